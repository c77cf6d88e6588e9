"""Reading the checkpoints `scratchlm pretrain` and the fine-tunes write (see `train.checkpoint`, which writes
them and resumes a run from one): check a checkpoint against its manifest, find the latest or the best one
of a run, and load its weights into a model.

A checkpoint is a directory `checkpoints/step_0000200/` holding `model.safetensors`, `optimizer.pt`,
`state.json` and `manifest.json` (SHA-256 of each file); `checkpoints/latest.json` and `best.json` name one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, sha256_file


def verify(checkpoint: Path) -> None:
    manifest_path = checkpoint / "manifest.json"
    if not manifest_path.is_file():
        raise ScratchLMError(f"{checkpoint}: incomplete checkpoint (no manifest.json)")
    for name, digest in read_json(manifest_path).items():
        path = checkpoint / name
        if not path.is_file() or sha256_file(path) != digest:
            raise ScratchLMError(f"{path}: missing or corrupt (SHA-256 does not match the manifest)")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint that verifies (latest.json first, then older ones), or None."""
    root = Path(run_dir) / "checkpoints"
    candidates = sorted((p for p in root.glob("step_*") if p.is_dir()), reverse=True)
    pointer = root / "latest.json"
    if pointer.is_file():
        named = root / read_json(pointer).get("checkpoint", "")
        candidates = [named, *[c for c in candidates if c != named]]
    for candidate in candidates:
        try:
            verify(candidate)
        except ScratchLMError:
            continue
        return candidate
    return None


def best_name(root: Path) -> str | None:
    """The checkpoint name best.json (in a run's checkpoints/ directory) points at, or None."""
    path = root / "best.json"
    return read_json(path).get("checkpoint") if path.is_file() else None


def best_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint best.json names if it verifies, else the latest one that does (or None)."""
    name = best_name(Path(run_dir) / "checkpoints")
    if name:
        try:
            verify(Path(run_dir) / "checkpoints" / name)
            return Path(run_dir) / "checkpoints" / name
        except ScratchLMError:
            pass
    return latest_checkpoint(run_dir)


def load_weights(checkpoint: Path, model: torch.nn.Module) -> None:
    """Only the weights of a verified checkpoint into `model` (same architecture, or a clear error)."""
    verify(checkpoint)
    tensors = load_file(str(checkpoint / "model.safetensors"))
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in tensors:
            twin = next(
                (k for k, t in expected.items() if t.data_ptr() == tensor.data_ptr() and k in tensors), None
            )
            if twin is None:
                raise ScratchLMError(
                    f"{checkpoint}: no tensor {key!r}: the checkpoint is of another architecture"
                )
            tensors[key] = tensors[twin]
        elif tensors[key].shape != tensor.shape:
            raise ScratchLMError(
                f"{checkpoint}: {key} has shape {tuple(tensors[key].shape)}, this model needs "
                f"{tuple(tensor.shape)} (a checkpoint of another architecture)"
            )
    model.load_state_dict(tensors, strict=True)
