"""Many processes on CPU (gloo): FSDP2-sharded training runs the one loop and matches one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scratchlm.train.distributed import mean_loss_and_tokens, setup_processes

SCRIPT = Path(__file__).with_name("fsdp_run.py")


def test_single_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rank, world, device = setup_processes("cpu")
    assert (rank, world, device.type) == (0, 1, "cpu")
    assert mean_loss_and_tokens(2.5, 10) == (2.5, 10)


@pytest.mark.slow
def test_fsdp2_two_processes_match_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    one = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "one.json")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = subprocess.run(
        [*command, str(SCRIPT), str(tmp_path / "two.json")],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a = json.loads((tmp_path / "one.json").read_text())
    b = json.loads((tmp_path / "two.json").read_text())
    assert len(a["losses"]) == len(b["losses"]) == 6
    assert max(abs(x - y) for x, y in zip(a["losses"], b["losses"])) <= 1e-5
    assert a["weights"].keys() == b["weights"].keys()
    assert max(abs(a["weights"][k] - b["weights"][k]) for k in a["weights"]) <= 1e-3
    assert b["local_rows"] * 2 == b["full_rows"]  # each process really held half of the weights
