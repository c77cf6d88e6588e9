"""Using a classifier: batched prediction at each text's last real token, and `Classifier`, which labels
new texts with a directory written by `scratchlm finetune classify`. Knows nothing about training."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from scratchlm.data.classification import encode_texts, iter_batches
from scratchlm.device import pick_device
from scratchlm.formats.model_files import cast_model, load_classifier, weight_dtype
from scratchlm.model.gpt import GPT
from scratchlm.model.heads import classify_logits
from scratchlm.precision import autocast


@torch.no_grad()
def predict_logits(
    model: GPT, ids: Sequence[Sequence[int]], pad_id: int, device, batch_size: int = 32, autocast=nullcontext
) -> torch.Tensor:
    """Class logits (N, num_classes), float32 on the CPU, in the order of `ids`.

    Texts are batched shortest first, so a batch pads to a length near its own; padding on the right does
    not change a row's logits, so the order only saves time."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = torch.empty(len(ids), model.out_head.out_features)
    sorted_ids = [ids[i] for i in order]
    position = 0
    for token_ids, _, last in iter_batches(sorted_ids, [0] * len(ids), batch_size, pad_id):
        with autocast():
            logits = classify_logits(model, token_ids.to(device), last.to(device))
        out[order[position : position + len(last)]] = logits.float().cpu()
        position += len(last)
    model.train(was_training)
    return out


def autocast_for(device: torch.device):
    """The autocast of `precision: auto` on `device` (bf16 on GPUs that have it, else none)."""
    return autocast("auto", device)


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]  # every class, in id order


class Classifier:
    """A fine-tuned classifier with its tokenizer and labels.

    >>> clf = Classifier.from_dir("runs/spam")                    # doctest: +SKIP
    >>> clf.predict(["You won a prize! Call now"])[0].label       # doctest: +SKIP
    'spam'
    """

    def __init__(self, model: GPT, tokenizer, labels: Sequence[str], max_length: int, device="cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer, self.labels = tokenizer, list(labels)
        self.max_length = min(max_length, model.cfg.context_length)
        self.pad_id = tokenizer.eot_id if tokenizer.eot_id is not None else 0

    @classmethod
    def from_dir(cls, path: str | Path, device: str = "auto", dtype: str | None = None) -> Classifier:
        """From a classifier directory or the run directory of `scratchlm finetune classify`, its weights
        in `dtype` (fp32 by default, bf16 or fp16)."""
        model, tokenizer, config = load_classifier(path)
        cast_model(model, weight_dtype(dtype))
        return cls(model, tokenizer, config["labels"], config["max_length"], pick_device(device))

    def probabilities(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
        """(N, num_classes) class probabilities; texts longer than the max length are cut, as in training."""
        ids, _ = encode_texts(self.tokenizer, list(texts), self.max_length)
        logits = predict_logits(
            self.model, ids, self.pad_id, self.device, batch_size, autocast_for(self.device)
        )
        return logits.softmax(-1)

    def predict(self, texts: str | Sequence[str], batch_size: int = 32) -> list[Prediction]:
        """The most probable label of each text, with all probabilities."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return []
        probs = self.probabilities(texts, batch_size).tolist()
        return [
            Prediction(self.labels[max(range(len(p)), key=p.__getitem__)], dict(zip(self.labels, p)))
            for p in probs
        ]
