"""Pictures of a run: `loss.png` (training and validation loss) and `lr.png`, drawn from metrics.jsonl.

Only reads the metrics file and writes PNGs (atomically); knows nothing about models.
"""

from __future__ import annotations

import os
from pathlib import Path

from scratchlm.train.runlog import read_metrics


def plot_run(run_dir: str | os.PathLike) -> list[Path]:
    """Draw loss.png and lr.png into `run_dir`; the last record of a step wins (a resumed run logs
    steps again)."""
    plt = pyplot()
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    train = {r["step"]: r for r in records if "loss" in r}
    val = {r["step"]: r for r in records if "val_loss" in r}
    written = []
    if train:
        fig, ax = plt.subplots(figsize=(7, 4))
        steps = sorted(train)
        ax.plot(steps, [train[s]["loss"] for s in steps], label="train", linewidth=1)
        if val:
            vsteps = sorted(val)
            ax.plot(vsteps, [val[s]["val_loss"] for s in vsteps], "o-", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats per token)")
        ax.set_title(run_dir.name)
        ax.grid(alpha=0.3)
        ax.legend()
        written.append(save_figure(fig, run_dir / "loss.png"))
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot(steps, [train[s]["lr"] for s in steps])
        ax.set_xlabel("step")
        ax.set_ylabel("learning rate")
        ax.grid(alpha=0.3)
        written.append(save_figure(fig, run_dir / "lr.png"))
    return written


def pyplot():
    """matplotlib's pyplot on the Agg backend: files only, no display (servers, CI, processes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write a figure atomically (a temp file, then rename), as every file of a run directory."""
    plt = pyplot()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path
