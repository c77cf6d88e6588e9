"""How good a classifier is: accuracy, precision/recall/F1 per class and their macro average, the confusion
matrix as text, and two pictures (confusion.png, curves.png).

The numbers are pure functions of (targets, predictions); the pictures read the run's metrics records.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from scratchlm.train.plots import pyplot, save_figure


def confusion_matrix(targets: Sequence[int], predictions: Sequence[int], num_classes: int) -> list[list[int]]:
    """counts[true][predicted].

    >>> confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], 2)
    [[1, 1], [1, 2]]
    """
    counts = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(targets, predictions, strict=True):
        counts[t][p] += 1
    return counts


def classification_report(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support and their unweighted (macro) means.

    A class never predicted has precision 0 and one never present has recall 0 (scikit-learn's
    zero_division=0), so a classifier cannot score well by ignoring a class.
    """
    k = len(labels)
    total = sum(map(sum, confusion))
    correct = sum(confusion[i][i] for i in range(k))
    per_class = {}
    for i, label in enumerate(labels):
        predicted = sum(confusion[r][i] for r in range(k))
        support = sum(confusion[i])
        precision = confusion[i][i] / predicted if predicted else 0.0
        recall = confusion[i][i] / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    macro = {m: sum(c[m] for c in per_class.values()) / k for m in ("precision", "recall", "f1")}
    return {
        "accuracy": correct / total if total else 0.0,
        "examples": total,
        "per_class": per_class,
        "macro": macro,
        "labels": list(labels),
        "confusion": [list(row) for row in confusion],
    }


def format_report(report: dict) -> str:
    """The report as a few aligned lines: the headline, a table per class, the confusion matrix."""
    labels = report["labels"]
    width = max(8, *(len(label) for label in labels))
    correct = sum(report["confusion"][i][i] for i in range(len(labels)))
    lines = [
        f"accuracy {report['accuracy']:.2%} ({correct:,} of {report['examples']:,})"
        f"   macro F1 {report['macro']['f1']:.4f}",
        f"{'class':<{width}} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}",
    ]
    for label, m in report["per_class"].items():
        lines.append(
            f"{label:<{width}} {m['precision']:>9.4f} {m['recall']:>7.4f} {m['f1']:>7.4f} {m['support']:>8,}"
        )
    macro = report["macro"]
    lines.append(f"{'macro':<{width}} {macro['precision']:>9.4f} {macro['recall']:>7.4f} {macro['f1']:>7.4f}")
    cell = max(7, *(len(label) for label in labels))
    lines += ["", "confusion matrix (rows: true label, columns: predicted)"]
    lines.append(" " * width + "".join(f" {label:>{cell}}" for label in labels))
    for label, row in zip(labels, report["confusion"]):
        lines.append(f"{label:<{width}}" + "".join(f" {n:>{cell},}" for n in row))
    return "\n".join(lines)


def plot_confusion(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], path: str | os.PathLike
) -> Path:
    """confusion.png: counts, with each cell shaded by its share of the true class (its row), so a rare
    class's mistakes are as visible as a common one's."""
    plt = pyplot()
    rows = [[n / max(1, sum(row)) for n in row] for row in confusion]
    size = 1.6 + 0.7 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rows, cmap="Blues", vmin=0.0, vmax=1.0)
    for i, row in enumerate(confusion):
        for j, n in enumerate(row):
            ax.text(j, i, f"{n:,}", ha="center", va="center", color="white" if rows[i][j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 4 else 0)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, label="share of the true class")
    return save_figure(fig, Path(path))


def plot_curves(records: Sequence[dict], path: str | os.PathLike, title: str = "") -> Path:
    """curves.png: training loss per logged step with validation loss, and accuracy (training sample and
    validation) at each evaluation."""
    plt = pyplot()
    train = {r["step"]: r["loss"] for r in records if "loss" in r and "step" in r}
    evals = {r["step"]: r for r in records if "val_loss" in r}
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        loss_ax.plot(sorted(train), [train[s] for s in sorted(train)], linewidth=1, label="train")
    steps = sorted(evals)
    if steps:
        loss_ax.plot(steps, [evals[s]["val_loss"] for s in steps], "o-", label="validation")
        acc_ax.plot(steps, [evals[s]["train_accuracy"] for s in steps], "o-", label="train (sample)")
        acc_ax.plot(steps, [evals[s]["val_accuracy"] for s in steps], "o-", label="validation")
    loss_ax.set(xlabel="step", ylabel="cross-entropy", title="loss")
    acc_ax.set(xlabel="step", ylabel="accuracy", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, Path(path))
