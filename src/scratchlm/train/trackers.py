"""Optional experiment trackers: every record of metrics.jsonl also goes to TensorBoard and/or Weights &
Biases when `train.loggers` names them. Neither is a dependency: asking for one that is not installed is a
clear error before training starts. metrics.jsonl stays the run's own record either way.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from scratchlm.errors import ScratchLMError

KNOWN = ("tensorboard", "wandb")


def _require(module: str, package: str, logger: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ScratchLMError(
            f"train.loggers {logger}: the {package!r} package is not installed (pip install {package})"
        ) from None


class TensorBoard:
    """Scalars under <run>/tensorboard: `tensorboard --logdir <run>/tensorboard`."""

    def __init__(self, out: Path, config: dict) -> None:
        _require("tensorboard", "tensorboard", "tensorboard")
        writer_cls = _require("torch.utils.tensorboard", "tensorboard", "tensorboard").SummaryWriter
        self.writer = writer_cls(log_dir=str(out / "tensorboard"))
        self.writer.add_text("config", f"```\n{config}\n```")

    def log(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class WandB:
    """A W&B run named after the run directory; its id is kept in <run>/wandb_id so that --resume goes on
    logging into the same W&B run. Project: $WANDB_PROJECT, else "scratchlm"."""

    def __init__(self, out: Path, config: dict) -> None:
        wandb = _require("wandb", "wandb", "wandb")
        id_file = out / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.exists() else wandb.util.generate_id()
        id_file.write_text(run_id)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "scratchlm"),
            name=out.resolve().name,
            id=run_id,
            resume="allow",
            dir=str(out),
            config=config,
        )

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


def open_trackers(names: tuple[str, ...], out: Path, config: dict) -> list:
    unknown = sorted(set(names) - set(KNOWN))
    if unknown:
        raise ScratchLMError(f"train.loggers: unknown {unknown}; known: {', '.join(KNOWN)}")
    return [{"tensorboard": TensorBoard, "wandb": WandB}[name](out, config) for name in dict.fromkeys(names)]


def numeric(record: dict) -> dict[str, float]:
    """The numbers of a metrics record, as tracker scalars ("train/loss", "val/val_bpb", …)."""
    values = {}
    for key, value in record.items():
        if key in ("step", "time") or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        values[f"{'val' if key.startswith('val_') else 'train'}/{key}"] = float(value)
    return values
