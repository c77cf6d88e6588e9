"""Pretraining end to end in subprocesses: kill -9 mid-run then --resume gives the very same losses;
kill -9 while a checkpoint is being written leaves the previous one loadable; metrics are written;
non-finite steps roll back to the last checkpoint with a lower learning rate."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scratchlm.config import RunConfig
from scratchlm.formats.checkpoint import latest_checkpoint, load_weights, verify
from scratchlm.train import checkpoint as ckpt

pytestmark = pytest.mark.slow

STEPS = 24
SETTINGS = {
    "model": {
        "preset": "tiny",
        "n_layers": 2,
        "emb_dim": 64,
        "n_heads": 2,
        "context_length": 32,
        "dropout": 0.1,
    },
    "train": {
        "max_steps": STEPS,
        "batch_size": 4,
        "warmup_steps": 4,
        "lr": 1e-3,
        "min_lr": 1e-4,
        "log_interval": 1,
        "eval_interval": 12,
        "eval_batches": 2,
        "checkpoint_interval": 8,
        "sample_tokens": 4,
    },
}


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    return tiny_corpus


def config_file(tmp_path: Path, corpus: Path) -> Path:
    import yaml

    settings = json.loads(json.dumps(SETTINGS))
    settings["data"] = {"inputs": [str(corpus)]}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def launch(config: Path, out: Path, *extra: str, driver: str = "") -> subprocess.Popen:
    code = driver + "\nfrom scratchlm.cli.main import main\nraise SystemExit(main(sys.argv[1:]))"
    args = [
        sys.executable,
        "-c",
        "import sys\n" + code,
        "pretrain",
        "-c",
        str(config),
        "-o",
        str(out),
        "-q",
        *extra,
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def losses(run: Path) -> dict[int, float]:
    """Training loss per step, the last record winning (a resumed run logs steps again)."""
    out: dict[int, float] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            out[record["step"]] = record["loss"]
    return out


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.stderr.read()}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_kill_9_then_resume_continues_the_same_run(tmp_path, corpus):
    config = config_file(tmp_path, corpus)
    reference = launch(config, tmp_path / "ref")
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    expected = losses(tmp_path / "ref")
    assert sorted(expected) == list(range(1, STEPS + 1))

    run = tmp_path / "run"
    proc = launch(config, run)
    wait_for(lambda: (run / "metrics.jsonl").exists() and max(losses(run), default=0) >= 13, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(losses(run))
    assert killed_at < STEPS, "the run finished before it could be killed"
    # It resumes from the newest complete checkpoint before the kill: step 8, the improving eval at 12, or 16.
    resume_from = int(latest_checkpoint(run).name.removeprefix("step_"))
    assert resume_from in (8, 12, 16) and resume_from <= killed_at
    resumed = launch(config, run, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert losses(run) == expected  # bit-identical floats, step for step


def test_kill_9_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, corpus):
    config = config_file(tmp_path, corpus)
    # Fault injection: the second checkpoint write stops half-way, long enough to be killed.
    driver = (
        "import time\n"
        "from scratchlm.train import checkpoint\n"
        "real = checkpoint._fsync\n"
        "calls = []\n"
        "def slow(path):\n"
        "    calls.append(path)\n"
        "    if len(calls) == 6:\n"  # 4 file syncs + 1 directory sync per checkpoint: inside the second
        "        print('WRITING', flush=True); time.sleep(60)\n"
        "    real(path)\n"
        "checkpoint._fsync = slow\n"
    )
    run = tmp_path / "run"
    proc = launch(config, run, driver=driver)
    assert proc.stdout.readline().strip() == "WRITING"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((run / "checkpoints").glob(".tmp-*"))  # the half-written checkpoint
    latest = latest_checkpoint(run)
    assert latest.name == "step_0000008"
    verify(latest)
    resumed = launch(config, run, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert not list((run / "checkpoints").glob(".tmp-*"))
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "cleaned_stale_checkpoint_writes" for e in events)
    assert max(losses(run)) == STEPS


def test_run_directory_explains_itself(tmp_path, corpus):
    from scratchlm.train.pretrain import pretrain

    cfg = RunConfig.from_dict({**SETTINGS, "data": {"inputs": [str(corpus)]}})
    outcome = pretrain(cfg, tmp_path, show_progress=False)
    assert outcome.state.step == STEPS and not outcome.stopped
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "metrics.jsonl", "samples.jsonl", "tokenizer", "checkpoints"} <= names
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in evals] == [12, 24]
    assert all(r["val_ppl"] == pytest.approx(math.exp(r["val_loss"])) and r["val_bpb"] > 0 for r in evals)
    steps = [r for r in records if "loss" in r]
    assert all({"lr", "grad_norm", "tokens_per_s"} <= set(r) for r in steps)
    assert RunConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == cfg
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert kept == ["step_0000012", "step_0000016", "step_0000024"]  # 12: the best evaluation, kept
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [12, 24]
    for name in ("loss.png", "lr.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_non_finite_steps_roll_back_with_a_lower_lr(tmp_path, corpus, monkeypatch):
    from scratchlm.train import pretrain as pretrain_module
    from scratchlm.train.losses import next_token_loss

    calls = {"n": 0}

    def flaky(model, batch):
        calls["n"] += 1
        loss = next_token_loss(model, batch)
        return loss * math.nan if 10 <= calls["n"] <= 12 else loss

    monkeypatch.setattr(pretrain_module, "next_token_loss", flaky)
    cfg = RunConfig.from_dict({**SETTINGS, "data": {"inputs": [str(corpus)]}})
    state = pretrain_module.pretrain(cfg, tmp_path, show_progress=False).state
    assert state.step == STEPS and state.lr_scale == 0.5
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rollback = [r for r in records if r.get("event") == "rolled_back"]
    # back to the last checkpoint: the best evaluation, step 12
    assert len(rollback) == 1 and rollback[0]["to_step"] == 12
    assert sum(1 for r in records if r.get("skipped")) == 3


def test_resume_refuses_another_architecture(tmp_path, corpus):
    from scratchlm.errors import ScratchLMError
    from scratchlm.train.pretrain import pretrain

    cfg = RunConfig.from_dict({**SETTINGS, "data": {"inputs": [str(corpus)]}})
    pretrain(cfg, tmp_path, show_progress=False)
    other = RunConfig.from_dict(
        {**SETTINGS, "model": {**SETTINGS["model"], "n_layers": 3}, "data": {"inputs": [str(corpus)]}}
    )
    with pytest.raises(ScratchLMError, match=r"model\.n_layers is 3, the saved run's is 2"):
        pretrain(other, tmp_path, resume=True, show_progress=False)
    with pytest.raises(ScratchLMError, match="already holds a run"):
        pretrain(cfg, tmp_path, show_progress=False)


def test_continued_pretraining_from_a_model_directory(tmp_path, corpus):
    import torch

    from scratchlm.config import tiny
    from scratchlm.errors import ScratchLMError
    from scratchlm.formats.model_files import load_model, save_model
    from scratchlm.model import GPT
    from scratchlm.train.pretrain import pretrain

    torch.manual_seed(0)
    start = GPT(tiny(n_layers=1, emb_dim=32, n_heads=2, context_length=32, qkv_bias=True))
    save_model(start, tmp_path / "init")
    # The architecture comes from the weights: the model section may set dropout only.
    settings = {**SETTINGS, "model": {"dropout": 0.1}, "data": {"inputs": [str(corpus)]}}
    settings["train"] = {
        **SETTINGS["train"],
        "max_steps": 4,
        "init": str(tmp_path / "init"),
        "eval_interval": 4,
    }
    with pytest.raises(ScratchLMError, match=r"model\.emb_dim is 64, but .* has 32"):
        pretrain(RunConfig.from_dict({**settings, "model": SETTINGS["model"]}), tmp_path / "x")
    cfg = RunConfig.from_dict(settings)
    pretrain(cfg, tmp_path / "run", show_progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert saved["n_layers"] == 1 and saved["qkv_bias"] is True and saved["dropout"] == 0.1
    trained, _ = load_model(tmp_path / "init")  # the initial weights are untouched on disk
    assert torch.equal(trained.emb.tok_emb.weight, start.emb.tok_emb.weight)
    pretrain(
        RunConfig.from_dict({**settings, "train": {**settings["train"], "max_steps": 6}}),
        tmp_path / "run",
        resume=True,
        show_progress=False,
    )
    assert latest_checkpoint(tmp_path / "run").name == "step_0000006"


def test_two_process_ddp_matches_one_process_at_the_same_global_batch(tmp_path, corpus):
    import yaml

    settings = json.loads(json.dumps(SETTINGS))
    settings["model"]["dropout"] = 0.0  # dropout draws differ between processes; the math must not
    settings["train"].update(max_steps=8, checkpoint_interval=100, eval_interval=100)
    settings["data"] = {"inputs": [str(corpus)]}
    single = dict(settings, train={**settings["train"], "batch_size": 8})
    double = dict(settings, train={**settings["train"], "batch_size": 4})
    (tmp_path / "single.yaml").write_text(yaml.safe_dump(single))
    (tmp_path / "double.yaml").write_text(yaml.safe_dump(double))
    one = launch(tmp_path / "single.yaml", tmp_path / "one")
    assert one.wait(timeout=300) == 0, one.stderr.read()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = ["torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "scratchlm"]
    command += ["pretrain", "-c", str(tmp_path / "double.yaml"), "-o", str(tmp_path / "two"), "-q"]
    ddp = subprocess.run(
        [sys.executable, "-m", *command], capture_output=True, text=True, timeout=240, env=env
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert sorted(a) == sorted(b) == list(range(1, 9))
    assert max(abs(a[s] - b[s]) for s in a) <= 1e-5
    records = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    tokens = [r["tokens"] for r in records if "loss" in r]
    assert tokens[-1] == 8 * 8 * 32  # both processes' tokens are counted


def _short(corpus: Path, **train) -> RunConfig:
    settings = json.loads(json.dumps(SETTINGS))
    settings["model"]["dropout"] = 0.0
    settings["train"].update({"max_steps": 4, "eval_interval": 4, "checkpoint_interval": 2, **train})
    settings["data"] = {"inputs": [str(corpus)]}
    return RunConfig.from_dict(settings)


def test_compiled_training_matches_eager(tmp_path, corpus):
    from scratchlm.train.pretrain import pretrain

    pretrain(_short(corpus), tmp_path / "eager", show_progress=False)
    pretrain(_short(corpus, compile=True), tmp_path / "compiled", show_progress=False)
    a, b = losses(tmp_path / "eager"), losses(tmp_path / "compiled")
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    assert max(abs(a[s] - b[s]) for s in a) <= 1e-4
    # the checkpoint holds plain weight names (no torch.compile wrapper prefix)
    ckpt.load_checkpoint(latest_checkpoint(tmp_path / "compiled"), _model(_short(corpus)))


def _model(cfg: RunConfig):
    from scratchlm.model import GPT

    return GPT(cfg.model)


def test_fp16_run_scales_the_loss_and_resumes_the_scale(tmp_path, corpus, tiny_tokenizer):
    from scratchlm.train.pretrain import pretrain

    def fp16(**train) -> RunConfig:
        # A 300-token vocabulary: the output layer stays small, so the test does not hang on how fast this
        # CPU does fp16 arithmetic (~3 GFLOP/s without fp16 units).
        cfg = _short(corpus, precision="fp16", **train)
        model = dataclasses.replace(cfg.model, vocab_size=300)
        return dataclasses.replace(
            cfg, model=model, data=dataclasses.replace(cfg.data, tokenizer=str(tiny_tokenizer))
        )

    pretrain(fp16(max_steps=2), tmp_path / "run", show_progress=False)
    state = json.loads((latest_checkpoint(tmp_path / "run") / "state.json").read_text())
    assert state["grad_scaler"]["scale"] > 0
    pretrain(fp16(), tmp_path / "run", resume=True, show_progress=False)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) and r["loss_scale"] > 0 for r in steps)
    peak = [r for r in records if r.get("event") == "peak_flops"]
    assert peak and peak[0]["precision"] == "fp16" and "float16" in peak[0]["source"]


def test_a_run_directory_is_a_model(tmp_path, corpus):
    import torch

    from scratchlm.formats.model_files import load_model
    from scratchlm.train.pretrain import pretrain

    pretrain(_short(corpus), tmp_path / "run", show_progress=False)
    model, tokenizer = load_model(tmp_path / "run")
    best = json.loads((tmp_path / "run" / "checkpoints" / "best.json").read_text())["checkpoint"]
    reference = _model(_short(corpus))
    load_weights(tmp_path / "run" / "checkpoints" / best, reference)
    x = torch.randint(0, 100, (1, 8))
    with torch.no_grad():
        assert torch.equal(model(x), reference.eval()(x))
    assert tokenizer.decode(tokenizer.encode_ordinary("def f(): pass")) == "def f(): pass"
    assert tokenizer.vocab_size == 50257


def test_continued_pretraining_with_lora(tmp_path, corpus):
    import torch

    from scratchlm.config import tiny
    from scratchlm.formats.model_files import load_model, save_model
    from scratchlm.interop.peft import load_peft_adapter
    from scratchlm.model import GPT
    from scratchlm.model.lora import LoRALinear
    from scratchlm.train.pretrain import pretrain

    torch.manual_seed(0)
    start = GPT(tiny(n_layers=2, emb_dim=32, n_heads=2, context_length=32))
    save_model(start, tmp_path / "init")
    settings = json.loads(json.dumps(SETTINGS))
    settings["model"] = {"dropout": 0.1}
    settings["data"] = {"inputs": [str(corpus)]}
    settings["train"].update(
        max_steps=6, eval_interval=6, checkpoint_interval=3, init=str(tmp_path / "init"), lr=1e-2
    )
    settings["lora"] = {"rank": 4, "alpha": 8, "targets": ["qkv", "ff_out"]}
    pretrain(RunConfig.from_dict(settings), tmp_path / "run", show_progress=False)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    lora = next(r for r in records if r.get("event") == "lora")
    assert lora["trainable"] == 2 * 4 * ((32 + 96) + (128 + 32))  # only the adapter trained

    trained, _ = load_model(tmp_path / "run")  # the run directory loads with the adapter merged
    assert not any(isinstance(m, LoRALinear) for m in trained.modules())
    base, _ = load_model(tmp_path / "init")
    load_peft_adapter(base, tmp_path / "run" / "adapter")  # the PEFT adapter on the untouched base
    x = torch.randint(0, 100, (2, 16))
    with torch.no_grad():
        assert (trained(x) - base.eval()(x)).abs().max() <= 1e-4
        assert (trained(x) - start.eval()(x)).abs().max() > 1e-4  # and it did learn something
    # resume continues the LoRA run from its checkpoint
    settings["train"]["max_steps"] = 8
    pretrain(RunConfig.from_dict(settings), tmp_path / "run", resume=True, show_progress=False)
    assert latest_checkpoint(tmp_path / "run").name == "step_0000008"


@pytest.mark.parametrize("name", ["qwen3-small", "gemma3-small", "olmo3-small"])
def test_pretraining_a_small_modern_preset_from_scratch(tmp_path, corpus, tiny_tokenizer, name):
    import torch

    from scratchlm.formats.model_files import load_model
    from scratchlm.generate.generate import generate
    from scratchlm.train.pretrain import pretrain

    settings = json.loads(json.dumps(SETTINGS))
    settings["model"] = {"preset": name, "n_layers": 2, "emb_dim": 64, "n_heads": 4, "ff_dim": 96}
    if name != "qwen3-small":  # one sliding layer, one full, a window shorter than the context
        settings["model"].update(sliding_window=8, layer_types=["sliding", "full"])
    settings["model"].update(context_length=32, vocab_size=300)
    settings["data"] = {"inputs": [str(corpus)], "tokenizer": str(tiny_tokenizer)}
    settings["train"].update(max_steps=4, eval_interval=4, checkpoint_interval=2)
    pretrain(RunConfig.from_dict(settings), tmp_path / "run", show_progress=False)
    assert sorted(losses(tmp_path / "run")) == [1, 2, 3, 4]
    assert all(math.isfinite(v) for v in losses(tmp_path / "run").values())
    model, tokenizer = load_model(tmp_path / "run")
    assert model.cfg.qk_norm and model.cfg.positions == "rope" and model.cfg.kv_heads == 2
    assert model.cfg.kinds == (("full", "full") if name == "qwen3-small" else ("sliding", "full"))
    out = generate(model, torch.tensor([tokenizer.encode_ordinary("def f(")]), max_new_tokens=5)
    assert out.shape[1] == len(tokenizer.encode_ordinary("def f(")) + 5


def _small(corpus: Path, tiny_tokenizer: Path, **train) -> RunConfig:
    """`_short` with the 300-token tokenizer: the output layer stays small."""
    cfg = _short(corpus, **train)
    model = dataclasses.replace(cfg.model, vocab_size=300)
    return dataclasses.replace(
        cfg, model=model, data=dataclasses.replace(cfg.data, tokenizer=str(tiny_tokenizer))
    )


def test_max_minutes_sizes_the_schedule_once_and_resume_keeps_it(
    tmp_path, corpus, tiny_tokenizer, monkeypatch
):
    from scratchlm.train import pretrain as pretrain_module

    measured = []

    def step_seconds(model_cfg, train_cfg, ids, seed, seconds, model, device):
        measured.append((seconds, type(model).__name__, str(device)))
        return 0.5

    monkeypatch.setattr(pretrain_module, "step_seconds", step_seconds)
    cfg = _small(corpus, tiny_tokenizer, max_minutes=0.05)  # 3 s at a measured 0.5 s/step: 6 steps
    pretrain_module.pretrain(cfg, tmp_path / "run", show_progress=False)
    assert measured == [(2.0, "GPT", "cpu")]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["max_steps"] == 6 and saved["train"]["max_minutes"] == 0.05
    assert sorted(losses(tmp_path / "run")) == [1, 2, 3, 4, 5, 6]

    def refuse(*args, **kwargs):
        raise AssertionError("a resumed run must keep the steps it chose")

    monkeypatch.setattr(pretrain_module, "step_seconds", refuse)
    cfg = RunConfig.from_dict(saved)
    pretrain_module.pretrain(cfg, tmp_path / "run", resume=True, show_progress=False)
    assert sorted(losses(tmp_path / "run")) == [1, 2, 3, 4, 5, 6]


def test_max_minutes_measures_the_real_step(tmp_path, corpus, tiny_tokenizer):
    from scratchlm.train.pretrain import fit_to_budget

    cfg = _small(corpus, tiny_tokenizer, max_minutes=0.05, warmup_steps=1)
    fitted = fit_to_budget(cfg, _model(cfg))
    assert fitted.train.max_steps > 10  # a 2-layer, 64-wide model steps in well under 0.3 s
    assert dataclasses.replace(fitted.train, max_steps=cfg.train.max_steps) == cfg.train


def test_fastest_precision_is_chosen_once_and_kept_on_resume(tmp_path, corpus, tiny_tokenizer, monkeypatch):
    from scratchlm import precision
    from scratchlm.train.pretrain import pretrain

    monkeypatch.setattr(precision, "fastest_cpu_precision", lambda: "fp32")
    pretrain(
        _small(corpus, tiny_tokenizer, precision="fastest", max_steps=2),
        tmp_path / "run",
        show_progress=False,
    )
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["precision"] == "fp32"  # what the run trains in, not "fastest"
    monkeypatch.setattr(precision, "fastest_cpu_precision", lambda: "bf16")  # the probe says otherwise now
    pretrain(
        _small(corpus, tiny_tokenizer, precision="fastest"),
        tmp_path / "run",
        resume=True,
        show_progress=False,
    )
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {r["precision"] for r in records if r.get("event") == "peak_flops"} == {"fp32"}
    assert sorted(losses(tmp_path / "run")) == [1, 2, 3, 4]
