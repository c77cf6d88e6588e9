"""Classification fine-tuning (the book's chapter 6) as a task of the run session: a pretrained GPT whose
vocabulary head becomes a class head, read at each text's last real token, trained on (token_ids, labels,
last_index).

The pieces are a dataset (`scratchlm.data.classification`), a loss (`classification_loss`) and a freeze
policy; `ClassifyTask` joins them for `scratchlm.train.session`, and `finetune_classifier(cfg, out)` runs it;
`scratchlm.generate.classifier.Classifier` labels new texts with the result.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from scratchlm.config import ClassifyConfig, LoRAConfig, RunConfig
from scratchlm.data.classification import (
    ClassificationBatches,
    class_weights,
    encode_texts,
    read_labeled,
    stratified_split,
    undersample,
)
from scratchlm.errors import ScratchLMError
from scratchlm.files import write_json
from scratchlm.finetune.classify_metrics import (
    classification_report,
    confusion_matrix,
    plot_confusion,
    plot_curves,
)
from scratchlm.formats.model_files import save_classifier
from scratchlm.generate.classifier import predict_logits
from scratchlm.interop.peft import save_adapter_if_possible
from scratchlm.model.gpt import GPT
from scratchlm.model.heads import add_classifier_head, classify_logits
from scratchlm.model.lora import apply_lora, mark_trainable, merge_lora, trainable_report
from scratchlm.results import ClassifyResult, check_result
from scratchlm.train.loop import TrainState
from scratchlm.train.runlog import read_metrics
from scratchlm.train.session import Outcome, Session, load_init, run_session

SPLITS = ("train", "val", "test")


# ---- the model: head, freezing, loss, prediction ----------------------------------------------------------
def parse_train_layers(spec: str) -> tuple[str, int]:
    """ "head" → ("head", 0), "last-2" → ("last", 2), "all" → ("all", 0), "lora" → ("lora", 0)."""
    if spec in ("head", "all", "lora"):
        return spec, 0
    match = re.fullmatch(r"last-(\d+)", spec)
    if match is None or int(match.group(1)) < 1:
        raise ScratchLMError(f"train layers must be head, last-N (N >= 1), all or lora; got {spec!r}")
    return "last", int(match.group(1))


def trainable_prefixes(spec: str, n_layers: int) -> tuple[str, ...]:
    """Parameter-name prefixes a freeze policy trains ("lora" trains the head besides its adapters).

    >>> trainable_prefixes("last-2", 4)
    ('trf_blocks.2.', 'trf_blocks.3.', 'final_norm.', 'out_head.')
    """
    policy, n = parse_train_layers(spec)
    if policy == "all":
        return ("",)
    if policy in ("head", "lora"):
        return ("out_head.",)
    if n > n_layers:
        raise ScratchLMError(f"train layers {spec!r}: the model has only {n_layers} blocks")
    return (*(f"trf_blocks.{i}." for i in range(n_layers - n, n_layers)), "final_norm.", "out_head.")


def prepare_classifier(
    model: GPT, num_classes: int, train_layers: str, lora: LoRAConfig | None = None, seed: int = 0
) -> dict:
    """Turn `model` into a classifier in place (new head from `seed`), freeze all but what `train_layers`
    trains, and return the trainable-parameter report (trainable, total, share)."""
    add_classifier_head(model, num_classes, torch.Generator().manual_seed(seed))
    policy, _ = parse_train_layers(train_layers)
    prefixes = trainable_prefixes(train_layers, model.cfg.n_layers)
    if policy == "lora":
        torch.manual_seed(seed)  # the adapters' A matrices are drawn from the global generator
        apply_lora(model, lora or LoRAConfig())
    else:
        for p in model.parameters():
            p.requires_grad_(False)
    mark_trainable(model, prefixes)
    return trainable_report(model)


def classification_loss(
    model: torch.nn.Module, batch: tuple[torch.Tensor, ...], weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy of the class logits at each row's last real token (class-weighted with `weight`)."""
    token_ids, labels, last_index = batch
    logits = classify_logits(model, token_ids, last_index).float()
    return F.cross_entropy(logits, labels, weight=None if weight is None else weight.to(logits.device))


# ---- the data of a run -------------------------------------------------------------------------------------
def load_splits(cfg: ClassifyConfig) -> dict[str, tuple[list[str], list[str]]]:
    """{"train"|"val"|"test": (texts, labels)}: the given tables, and the others split off `cfg.data` in
    proportion to `cfg.split` (stratified and seeded)."""
    fields = (cfg.text_field, cfg.label_field, cfg.header)
    texts, labels = read_labeled(cfg.data, *fields)
    given = {"train": None, "val": cfg.val, "test": cfg.test}
    names = [n for n in SPLITS if given[n] is None]
    fractions = [cfg.split[SPLITS.index(n)] for n in names]
    parts = stratified_split(labels, [f / sum(fractions) for f in fractions], cfg.split_seed)
    splits = {n: ([texts[i] for i in p], [labels[i] for i in p]) for n, p in zip(names, parts)}
    for name, path in given.items():
        if path is not None:
            splits[name] = read_labeled(path, *fields)
    for name in SPLITS:
        if not splits[name][0]:
            raise ScratchLMError(
                f"the {name} split of {cfg.data} is empty ({len(texts)} rows, split {cfg.split}): "
                "use more data, other --split fractions, or give --val/--test files"
            )
    return splits


def label_names(cfg: ClassifyConfig, splits: dict[str, tuple[list[str], list[str]]]) -> list[str]:
    """The classes in id order, checked against every split."""
    seen = sorted(set(splits["train"][1]))
    labels = list(cfg.labels) if cfg.labels else seen
    if len(set(labels)) < 2:
        raise ScratchLMError(
            f"only one class ({labels[0]!r}) in the training data of {cfg.data}: a classifier needs two or "
            f"more (is --label-field {cfg.label_field!r} the label column?)"
        )
    for name in SPLITS:
        unknown = sorted(set(splits[name][1]) - set(labels))
        if unknown:
            raise ScratchLMError(
                f"the {name} split has label(s) {unknown[:5]} not among the classes {labels[:10]}"
            )
    missing = sorted(set(labels) - set(seen))
    if missing:
        raise ScratchLMError(f"class(es) {missing[:5]} have no training examples")
    return labels


@dataclass
class _Encoded:
    ids: list[list[int]]
    labels: list[int]
    truncated: int


def encode_splits(cfg, splits, labels, tokenizer, context_length: int) -> tuple[dict[str, _Encoded], int]:
    """Token ids and label ids of each split, truncated to the max length (returned too)."""
    if cfg.max_length is not None and cfg.max_length > context_length:
        raise ScratchLMError(
            f"max length {cfg.max_length} is longer than the model's context length {context_length}"
        )
    ids = {name: encode_texts(tokenizer, splits[name][0])[0] for name in SPLITS}
    max_length = cfg.max_length or min(max(map(len, ids["train"])), context_length)
    label_id = {label: i for i, label in enumerate(labels)}
    encoded = {
        name: _Encoded(
            [row[:max_length] for row in ids[name]],
            [label_id[y] for y in splits[name][1]],
            sum(len(row) > max_length for row in ids[name]),
        )
        for name in SPLITS
    }
    return encoded, max_length


# ---- the task ----------------------------------------------------------------------------------------------
class ClassifyTask:
    """The session's classification task: the best validation score's weights are the result."""

    eval_at_start = False
    restore_best = True
    result_file = "eval.json"
    flops_per_token = None

    def __init__(self, cfg: RunConfig, out: Path, resume: bool) -> None:
        task = cfg.classify
        if task is None or not task.data:
            raise ScratchLMError("a classify run needs its labelled texts: set classify.data (--data)")
        seed = cfg.train.seed
        splits = load_splits(task)  # the data's errors come before a slow model load
        labels = label_names(task, splits)
        if task.balance == "undersample":
            keep = undersample(splits["train"][1], task.split_seed)
            splits["train"] = ([splits["train"][0][i] for i in keep], [splits["train"][1][i] for i in keep])
        model, tokenizer, cfg = load_init(cfg)
        if tokenizer is None:
            raise ScratchLMError(f"{cfg.train.init}: no tokenizer files beside the model")
        if task.train_layers == "lora" and cfg.lora is not None and "head" in cfg.lora.targets:
            raise ScratchLMError("the class head is trained in full: leave 'head' out of the LoRA targets")
        if cfg.lora is not None and task.train_layers != "lora":
            raise ScratchLMError(
                f"LoRA settings need classify.train_layers 'lora', not {task.train_layers!r}"
            )
        self.encoded, self.max_length = encode_splits(
            task, splits, labels, tokenizer, model.cfg.context_length
        )
        self.parameters = prepare_classifier(model, len(labels), task.train_layers, cfg.lora, seed)
        torch.manual_seed(seed)  # dropout's draws start from the seed
        self.pad_id = tokenizer.eot_id if tokenizer.eot_id is not None else 0  # padding is never read
        self.weight = None
        if task.balance == "weights":
            self.weight = torch.tensor(class_weights(self.encoded["train"].labels, len(labels)))
        train = self.encoded["train"]
        self.batches = ClassificationBatches(train.ids, train.labels, self.pad_id, seed)
        self.steps_per_epoch = self.batches.steps_per_epoch(cfg.train.batch_size)
        self.max_steps = (
            math.ceil(task.epochs * self.steps_per_epoch) if task.epochs is not None else cfg.train.max_steps
        )
        # Training accuracy on a fixed sample: a full pass over the training split would cost an epoch.
        sample = sorted(random.Random(seed).sample(range(len(train.ids)), min(len(train.ids), 500)))
        self.train_sample = _Encoded([train.ids[i] for i in sample], [train.labels[i] for i in sample], 0)
        self.cfg, self.model, self.tokenizer = cfg, model, tokenizer
        self.splits, self.labels = splits, labels

    def loss(self, model: torch.nn.Module, batch) -> torch.Tensor:
        return classification_loss(model, batch, self.weight)

    def start(self, session: Session) -> None:
        write_json(
            session.out / "labels.json",
            {
                "id2label": {str(i): y for i, y in enumerate(self.labels)},
                "label2id": {y: i for i, y in enumerate(self.labels)},
            },
        )
        session.log(
            {
                "event": "start",
                "parameters": self.parameters,
                "max_length": self.max_length,
                "device": str(session.device),
            }
        )

    def score(self, session: Session, data: _Encoded) -> tuple[float, dict]:
        logits = predict_logits(
            session.model, data.ids, self.pad_id, session.device, autocast=session.autocast
        )
        loss = F.cross_entropy(logits, torch.tensor(data.labels), weight=self.weight).item()
        predictions = logits.argmax(-1).tolist()
        return loss, classification_report(
            confusion_matrix(data.labels, predictions, len(self.labels)), self.labels
        )

    def evaluate(self, session: Session, step: int) -> tuple[dict, tuple[float, ...]]:
        val_loss, val = self.score(session, self.encoded["val"])
        _, train = self.score(session, self.train_sample)
        record = {
            "val_loss": val_loss,
            "val_accuracy": val["accuracy"],
            "val_macro_f1": val["macro"]["f1"],
            "train_accuracy": train["accuracy"],
        }
        select = self.cfg.classify.select
        key = (-val_loss,) if select == "loss" else (_score(val, select), -val_loss)
        return record, key

    def plot(self, out: Path) -> None:
        title = (
            f"{out.name}: {Path(self.cfg.classify.data).name}, train layers {self.cfg.classify.train_layers}"
        )
        plot_curves(read_metrics(out), out / "curves.png", title=title)

    def finish(self, session: Session, state: TrainState) -> dict:
        task, out = self.cfg.classify, session.out
        val_loss, val = self.score(session, self.encoded["val"])  # the best weights', as evaluated then
        test_loss, test = self.score(session, self.encoded["test"])
        session.log(
            {"event": "test", "step": state.step, "test_loss": test_loss, "test_accuracy": test["accuracy"]}
        )
        plot_confusion(test["confusion"], self.labels, out / "confusion.png")
        self._save(out, session.log)
        splits = self.splits
        result: ClassifyResult = {
            "labels": self.labels,
            "test": {"loss": test_loss, **test},
            "val": {"loss": val_loss, **val},
            "best": {"step": state.best_step, "select": task.select},
            "parameters": self.parameters,
            "examples": {n: {y: splits[n][1].count(y) for y in self.labels} for n in SPLITS},
            "max_length": self.max_length,
            "truncated": {n: self.encoded[n].truncated for n in SPLITS},
            "steps": state.step,
            "seconds": {"train": round(state.seconds, 2)},
            "device": str(session.device),
        }
        return check_result("classify", result)

    def _save(self, out: Path, log) -> None:
        """model/ (LoRA merged into the weights) and, with LoRA, adapter/ (PEFT files + the class head) when
        PEFT's format can describe the architecture."""
        model = self.model
        if self.cfg.lora is not None:
            if save_adapter_if_possible(model, out / "adapter", self.cfg.train.init, log) is not None:
                head = {
                    f"out_head.{k}": v.detach().cpu().contiguous()
                    for k, v in model.out_head.state_dict().items()
                }
                path = str(out / "adapter" / "classifier_head.safetensors")
                save_file(head, path, metadata={"format": "pt"})
            merge_lora(model, unload=True)
        save_classifier(
            model,
            out / "model",
            self.tokenizer,
            self.labels,
            self.max_length,
            base_model=self.cfg.train.init,
            pad_id=self.pad_id,
        )


def finetune_classifier(
    cfg: RunConfig, out_dir: str | Path, resume: bool = False, show_progress: bool = True
) -> Outcome:
    """Fine-tune, evaluate and save a classifier in `out_dir` (or continue the run there).

    Writes config.json, labels.json, metrics.jsonl, checkpoints/, curves.png, eval.json (test and
    best-validation metrics: the outcome's `result`), confusion.png (test), the classifier in model/ (LoRA
    merged in), and with LoRA the PEFT adapter and the class head in adapter/.
    """
    if cfg.kind != "classify":
        raise ScratchLMError(f"finetune_classifier: the config is of a {cfg.kind} run")
    return run_session(cfg, ClassifyTask, out_dir, resume, show_progress)


def _score(report: dict, select: str) -> float:
    return report["accuracy"] if select == "accuracy" else report["macro"]["f1"]
