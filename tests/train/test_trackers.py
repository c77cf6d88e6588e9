"""TensorBoard and W&B are optional: asked for, they get every metrics record; missing, a clear error."""

from __future__ import annotations

import json
import sys
import types

import pytest

from scratchlm.config import RunConfig
from scratchlm.errors import ScratchLMError
from scratchlm.train.pretrain import pretrain
from scratchlm.train.trackers import numeric, open_trackers


def settings(corpus, **train):
    return RunConfig.from_dict(
        {
            "model": {"preset": "tiny", "n_layers": 1, "emb_dim": 32, "n_heads": 2, "context_length": 16},
            "data": {"inputs": [str(corpus)]},
            "train": {
                "max_steps": 4,
                "batch_size": 2,
                "warmup_steps": 1,
                "log_interval": 1,
                "eval_interval": 2,
                "eval_batches": 1,
                "sample_tokens": 2,
                "checkpoint_interval": 100,
                **train,
            },
        }
    )


@pytest.fixture
def corpus(tmp_path, stdlib_text):
    path = tmp_path / "text.txt"
    path.write_text(stdlib_text[:20_000], encoding="utf-8")
    return path


@pytest.fixture
def fake_trackers(monkeypatch):
    """Stand-ins for the `tensorboard` and `wandb` packages that record what they are given."""
    seen = {"scalars": [], "wandb": [], "init": None, "closed": []}

    class SummaryWriter:
        def __init__(self, log_dir):
            seen["log_dir"] = log_dir

        def add_text(self, tag, text):
            pass

        def add_scalar(self, key, value, step):
            seen["scalars"].append((key, value, step))

        def close(self):
            seen["closed"].append("tensorboard")

    class Run:
        def log(self, values, step):
            seen["wandb"].append((values, step))

        def finish(self):
            seen["closed"].append("wandb")

    def init(**kwargs):
        seen["init"] = kwargs
        return Run()

    board = types.ModuleType("torch.utils.tensorboard")
    board.SummaryWriter = SummaryWriter
    wandb = types.ModuleType("wandb")
    wandb.init = init
    wandb.util = types.SimpleNamespace(generate_id=lambda: "abc123")
    monkeypatch.setitem(sys.modules, "tensorboard", types.ModuleType("tensorboard"))
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", board)
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    return seen


def test_every_record_goes_to_both_trackers(tmp_path, corpus, fake_trackers):
    # a given peak (the measured one can be low while other processes share the CPU) keeps MFU in (0, 1)
    run = settings(corpus, loggers="tensorboard,wandb", peak_flops=1e13)
    pretrain(run, tmp_path / "run", show_progress=False)
    seen = fake_trackers
    keys = {key for key, _, _ in seen["scalars"]}
    assert {"train/loss", "train/lr", "train/mfu", "val/val_loss"} <= keys
    assert sorted({step for key, _, step in seen["scalars"] if key == "train/loss"}) == [1, 2, 3, 4]
    assert [step for values, step in seen["wandb"] if "val/val_loss" in values] == [2, 4]
    assert seen["init"]["id"] == "abc123" and seen["init"]["resume"] == "allow"
    assert (tmp_path / "run" / "wandb_id").read_text() == "abc123"
    assert sorted(seen["closed"]) == ["tensorboard", "wandb"]
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(0 < r["mfu"] < 1 for r in records if "loss" in r)


def test_missing_package_is_a_clear_error_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails
    with pytest.raises(ScratchLMError, match=r"pip install wandb"):
        open_trackers(("wandb",), tmp_path, {})
    with pytest.raises(ScratchLMError, match="unknown"):
        open_trackers(("mlflow",), tmp_path, {})


def test_numeric_keeps_numbers_only():
    record = {"step": 3, "time": 1.0, "loss": 2.5, "skipped": "why", "val_bpb": 1.1, "ok": True}
    assert numeric(record) == {"train/loss": 2.5, "val/val_bpb": 1.1}
