"""Checkpoints that survive crashes and resume the very same run.

A checkpoint is a directory `checkpoints/step_0000200/` holding `model.safetensors`, `optimizer.pt` (loaded
with weights_only=True), `state.json` (step, counters, the random states of python, numpy, torch and the
data sampler) and `manifest.json` (SHA-256 of each file). It is written as `.tmp-…`, each file fsynced,
then renamed into place; `latest.json` is replaced atomically last. A crash at any moment leaves the
previous checkpoint whole; stale temp directories are removed at the next start.

This is the write side and full resume; reading one (verify, latest/best, weights only) is
`scratchlm.formats.checkpoint`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from scratchlm.files import read_json, sha256_file, write_json
from scratchlm.formats.checkpoint import best_name, load_weights
from scratchlm.train.loop import TrainState

FILES = ("model.safetensors", "optimizer.pt", "state.json")


def random_states() -> dict[str, Any]:
    version, mt, gauss = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [version, list(mt), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state().tolist(),
    }


def set_random_states(states: dict[str, Any]) -> None:
    version, mt, gauss = states["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(torch.tensor(states["torch"], dtype=torch.uint8))


def _model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    seen: set[int] = set()
    tensors = {}
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen:  # a tied weight is stored once
            continue
        seen.add(tensor.data_ptr())
        tensors[name] = tensor.detach().cpu().contiguous()
    return tensors


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    data_state: dict,
    config: dict,
    keep_last: int = 3,
    scaler: torch.amp.GradScaler | None = None,
) -> Path:
    """Write checkpoint `step_{state.step}` atomically, point latest.json at it, prune old ones."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{state.step:07d}"
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_model_tensors(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    payload = {"train": vars(state), "random": random_states(), "data": data_state, "config": config}
    if scaler is not None and scaler.is_enabled():
        payload["grad_scaler"] = scaler.state_dict()
    (tmp / "state.json").write_text(json.dumps(payload, default=_json_default), encoding="utf-8")
    manifest = {f: sha256_file(tmp / f) for f in FILES}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    for f in (*FILES, "manifest.json"):
        _fsync(tmp / f)
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync(root)
    write_json(root / "latest.json", {"checkpoint": name, "step": state.step})
    _prune(root, keep_last, keep={name, best_name(root)})
    return final


def mark_best(run_dir: Path, checkpoint: Path, val_loss: float) -> None:
    write_json(
        Path(run_dir) / "checkpoints" / "best.json", {"checkpoint": checkpoint.name, "val_loss": val_loss}
    )


def _prune(root: Path, keep_last: int, keep: set[str | None]) -> None:
    done = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in done[:-keep_last]:
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


def clean_stale(run_dir: Path) -> list[Path]:
    """Remove temp directories left by a checkpoint write that was killed."""
    stale = sorted((Path(run_dir) / "checkpoints").glob(".tmp-*"))
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def load_checkpoint(
    checkpoint: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[TrainState, dict, dict]:
    """Restore weights (and optimizer, fp16 loss scale and random states); return (train state, data state,
    saved config)."""
    load_weights(checkpoint, model)
    payload = read_json(checkpoint / "state.json")
    if optimizer is not None:
        optimizer.load_state_dict(
            torch.load(checkpoint / "optimizer.pt", weights_only=True, map_location="cpu")
        )
    if scaler is not None and "grad_scaler" in payload:
        scaler.load_state_dict(payload["grad_scaler"])
    set_random_states(payload["random"])
    return TrainState(**payload["train"]), payload["data"], payload["config"]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")
