"""Every stage on every family: a LoRA classifier and a LoRA instruction tune of Llama, Qwen2.5, Qwen3,
Gemma 3 and Olmo 3 checkpoints (random weights, their own byte-level tokenizer) finish, and an interrupted
run resumed with --resume logs the very same losses and ends with the same metrics; the results load back
with the model's tokenizer; `serve` answers the official `openai` client for a Qwen3 and a Gemma 3."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scratchlm.cli.main import main
from tests.finetune.test_classify import keyword_rows, write_tsv
from tests.instruct_data import synthetic_records, write_records
from tests.interop.test_hf_gemma import save_gemma3
from tests.interop.test_hf_llama import save_llama
from tests.interop.test_hf_olmo import save_olmo
from tests.interop.test_hf_tokenizer import CONVERSATION, build_tokenizer

transformers = pytest.importorskip("transformers")

FAMILIES = {
    "llama": lambda d, v: save_llama(d, vocab_size=v),
    "qwen2": lambda d, v: save_llama(d, family="qwen2", vocab_size=v, tie_word_embeddings=True),
    "qwen3": lambda d, v: save_llama(d, family="qwen3", vocab_size=v, head_dim=16),
    "gemma3_text": lambda d, v: save_gemma3(d, vocab_size=v),
    "olmo3": lambda d, v: save_olmo(d, "olmo3", vocab_size=v),
}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    return build_tokenizer(tmp_path_factory.mktemp("tokenizer"), "bytelevel")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("data")
    return {
        "table": str(write_tsv(root / "kw.tsv", keyword_rows(20))),
        "instructions": str(write_records(root / "inst.json", synthetic_records(40))),
    }


def family_dir(root: Path, name: str, tokenizer_dir: Path) -> Path:
    """A Hub-shaped directory of `name` with the shared tokenizer (its vocabulary fits the embedding)."""
    directory = root / name
    shutil.copytree(tokenizer_dir, directory)
    vocab = len(json.loads((tokenizer_dir / "tokenizer.json").read_text())["model"]["vocab"]) + 10
    FAMILIES[name](directory, vocab)
    return directory


class Interrupted(BaseException):
    """Ends a run abruptly, as a kill would: nothing of the session's own runs after it."""


def losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r and "step" in r}


def command(kind: str, base: Path, data: dict[str, str], out: Path) -> list[str]:
    common = ["--lora-rank", "4", "--train.log_interval", "1", "--train.checkpoint_interval", "3", "-q"]
    common += ["--model.dropout", "0.1", "--out", str(out)]
    if kind == "classify":  # 42 training rows: 6 steps per epoch, 2 epochs
        return [
            *("finetune", "classify", "--model", str(base), "--data", data["table"], "--epochs", "2"),
            *("--classify.label_field", "0", "--classify.text_field", "1", "--lr", "1e-3"),
            *common,
        ]
    return [
        *("finetune", "instruct", "--model", str(base), "--data", data["instructions"]),
        *("--max-steps", "8", "--train.eval_interval", "4", "--lr", "3e-3", "--max-new-tokens", "4"),
        *common,
    ]


@pytest.mark.parametrize("kind", ["classify", "instruct"])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_lora_fine_tunes_finish_and_resume_exactly(tmp_path, monkeypatch, tokenizer_dir, data, name, kind):
    from scratchlm.formats.model_files import load_classifier, load_model
    from scratchlm.interop.hf_tokenizer import HFTokenizer
    from scratchlm.train import runlog

    base = family_dir(tmp_path, name, tokenizer_dir)
    assert main(command(kind, base, data, tmp_path / "ref")) == 0
    expected = losses(tmp_path / "ref")

    real_log, stop_at = runlog.RunLog.log, 5

    def log(self, record):
        real_log(self, record)
        if record.get("step") == stop_at and "loss" in record:
            raise Interrupted

    monkeypatch.setattr(runlog.RunLog, "log", log)
    with pytest.raises(Interrupted):
        main(command(kind, base, data, tmp_path / "run"))
    monkeypatch.setattr(runlog.RunLog, "log", real_log)
    assert max(losses(tmp_path / "run")) == stop_at and not (tmp_path / "run" / "eval.json").exists()
    assert main([*command(kind, base, data, tmp_path / "run"), "--resume"]) == 0
    assert losses(tmp_path / "run") == expected  # bit-identical, step for step
    result = json.loads((tmp_path / "run" / "eval.json").read_text())
    reference = json.loads((tmp_path / "ref" / "eval.json").read_text())

    def same(record: dict) -> dict:  # all but times and paths
        return {k: v for k, v in record.items() if not k.endswith(("seconds", "_dir")) and k != "device"}

    assert same(result) == same(reference)
    if kind == "classify":
        model, tokenizer, _ = load_classifier(tmp_path / "run")
    else:
        model, tokenizer = load_model(tmp_path / "run")
    assert isinstance(tokenizer, HFTokenizer)  # the model's own tokenizer, carried along
    assert model.cfg.norm_placement == {"gemma3_text": "sandwich", "olmo3": "post"}.get(name, "pre")


@pytest.mark.parametrize("name", ["qwen3", "gemma3_text"])
def test_serve_answers_the_openai_client(tmp_path, tokenizer_dir, name):
    import openai
    from transformers import AutoTokenizer

    from scratchlm.serve.server import BackgroundServer, build_service

    base = family_dir(tmp_path, name, tokenizer_dir)
    service = build_service(str(base), max_batch=2)
    expected = AutoTokenizer.from_pretrained(str(base)).apply_chat_template(
        CONVERSATION, tokenize=True, add_generation_prompt=True, return_dict=False
    )
    with BackgroundServer(service) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=60)
        chat = client.chat.completions.create(model=service.model_name, messages=CONVERSATION, max_tokens=5)
        completion = client.completions.create(model=service.model_name, prompt="Hello", max_tokens=4)
    assert chat.usage.prompt_tokens == len(expected) and chat.usage.completion_tokens <= 5
    assert chat.choices[0].finish_reason in ("length", "stop")
    assert completion.usage.completion_tokens <= 4 and isinstance(completion.choices[0].text, str)


def test_continued_pretraining_uses_the_models_tokenizer_and_shorter_windows(tmp_path, tokenizer_dir):
    from scratchlm.formats.model_files import load_model
    from scratchlm.formats.tokenizer_files import load_tokenizer
    from scratchlm.interop.hf_tokenizer import HFTokenizer

    base = family_dir(tmp_path, "gemma3_text", tokenizer_dir)
    (tmp_path / "text.txt").write_text("Every effort moves you, and every window slides. " * 200)
    args = ["pretrain", "--train.init", str(base), "--data.inputs", str(tmp_path / "text.txt")]
    args += ["--data.seq_len", "24", "--train.batch_size", "2", "--train.checkpoint_interval", "2"]
    args += ["--train.log_interval", "1"]
    args += ["--out", str(tmp_path / "run"), "-q"]
    assert main([*args, "--train.max_steps", "4"]) == 0
    assert main([*args, "--train.max_steps", "6", "--resume"]) == 0
    assert sorted(losses(tmp_path / "run")) == [1, 2, 3, 4, 5, 6]
    assert isinstance(load_tokenizer(tmp_path / "run" / "tokenizer"), HFTokenizer)  # not GPT-2's
    model, tokenizer = load_model(tmp_path / "run")
    assert isinstance(tokenizer, HFTokenizer) and model.cfg.context_length == 128  # the model's own
    too_long = [a if a != "24" else "129" for a in args]
    assert main([*too_long[:-3], "--out", str(tmp_path / "x"), "--train.max_steps", "2"]) == 2
