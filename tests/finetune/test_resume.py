"""Every fine-tune resumes exactly: a run killed with SIGKILL mid-run and continued with --resume logs the
very same losses, step for step, and ends with the same metrics as a run that was never interrupted.

Each run is the CLI in a subprocess; the kill is deterministic: a driver makes the process SIGKILL itself
right after it logs a chosen step (before that step's evaluation or checkpoint)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from scratchlm.formats.checkpoint import latest_checkpoint
from tests.finetune.test_classify import keyword_rows, save_base, write_tsv
from tests.instruct_data import synthetic_records, tiny_model_dir, write_records

pytestmark = pytest.mark.slow

# Kills the process right after the training-loss record of step KILL_AT is written.
DRIVER = """
import os, signal
from scratchlm.train import runlog
_log = runlog.RunLog.log
def log(self, record):
    _log(self, record)
    if record.get("step") == int(os.environ["KILL_AT"]) and "loss" in record:
        os.kill(os.getpid(), signal.SIGKILL)
runlog.RunLog.log = log
"""


def launch(args: list[str], kill_at: int | None = None) -> subprocess.CompletedProcess:
    code = (
        DRIVER if kill_at else ""
    ) + "\nfrom scratchlm.cli.main import main\nraise SystemExit(main(sys.argv[1:]))"
    env = {**__import__("os").environ, "KILL_AT": str(kill_at or 0)}
    return subprocess.run(
        [sys.executable, "-c", "import sys\n" + code, *args, "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def losses(run: Path) -> dict[int, float]:
    out: dict[int, float] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record and "step" in record:
            out[record["step"]] = record["loss"]
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    return {
        "classify_base": save_base(root / "cbase"),
        "table": write_tsv(root / "kw.tsv", keyword_rows(30)),
        "instruct_base": str(tiny_model_dir(root / "ibase")),
        "instructions": str(write_records(root / "inst.json", synthetic_records(60))),
    }


def command(kind: str, inputs: dict, lora: bool) -> list[str]:
    common = ["--train.log_interval", "1", "--train.checkpoint_interval", "5", "--model.dropout", "0.1"]
    common += ["--lora-rank", "4"] if lora else []
    if kind == "classify":  # 90 rows: 63 train, 7 steps per epoch at batch 8, evaluated each epoch
        return [
            *("finetune", "classify", "--model", inputs["classify_base"], "--data", inputs["table"]),
            *("--classify.label_field", "0", "--classify.text_field", "1", "--epochs", "3", "--lr", "1e-3"),
            *common,
        ]
    return [
        *("finetune", "instruct", "--model", inputs["instruct_base"], "--data", inputs["instructions"]),
        *("--max-steps", "16", "--train.eval_interval", "4", "--lr", "3e-3", "--baseline"),
        *("--max-new-tokens", "8", "--instruct.split", "0.7,0.15,0.15", "--instruct.eval_batch_size", "16"),
        *common,
    ]


def result_metrics(kind: str, run: Path) -> dict:
    result = json.loads((run / "eval.json").read_text())
    if kind == "classify":
        return {k: result[k] for k in ("test", "val", "best", "steps")}
    keys = ("best_step", "best_val_loss", "test_response_nll", "rouge_l", "exact_match", "before", "steps")
    return {k: result[k] for k in keys} | {"responses": json.loads((run / "responses.json").read_text())}


@pytest.mark.parametrize(
    ("kind", "lora", "kill_at"),
    [("classify", False, 12), ("classify", True, 9), ("instruct", False, 11), ("instruct", True, 7)],
)
def test_killed_and_resumed_equals_uninterrupted(tmp_path, inputs, kind, lora, kill_at):
    args = command(kind, inputs, lora)
    reference = launch([*args, "--out", str(tmp_path / "ref")])
    assert reference.returncode == 0, reference.stderr
    expected = losses(tmp_path / "ref")

    run = tmp_path / "run"
    killed = launch([*args, "--out", str(run)], kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert max(losses(run)) == kill_at and not (run / "eval.json").exists()
    resume_from = int(latest_checkpoint(run).name.removeprefix("step_"))
    assert 0 < resume_from < kill_at  # it really continues from the middle
    resumed = launch([*args, "--out", str(run), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert losses(run) == expected  # bit-identical floats, step for step
    assert result_metrics(kind, run) == result_metrics(kind, tmp_path / "ref")
    again = launch([*args, "--out", str(run), "--resume"])
    assert again.returncode == 2 and "finished" in again.stderr
