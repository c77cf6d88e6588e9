"""Classification fine-tuning (the book's chapter 6): a pretrained GPT whose vocabulary head becomes a class
head, read at each text's last real token, trained by the one loop on (token_ids, labels, last_index).

The pieces are a dataset (`scratchlm.data.classification`), a loss (`classification_loss`) and a freeze
policy; `finetune_classifier(cfg, out)` is the shell that reads files and writes the run directory;
`scratchlm.finetune.classifier.Classifier` labels new texts with the result.
"""

from __future__ import annotations

import dataclasses
import random
import re
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm.auto import tqdm

from scratchlm.config import TrainConfig
from scratchlm.data.classification import (
    ClassificationBatches,
    class_weights,
    encode_texts,
    read_labeled,
    stratified_split,
    undersample,
)
from scratchlm.device import pick_device
from scratchlm.errors import ScratchLMError
from scratchlm.files import write_json
from scratchlm.finetune.classifier import autocast_for, predict_logits
from scratchlm.finetune.classify_metrics import (
    classification_report,
    confusion_matrix,
    plot_confusion,
    plot_curves,
)
from scratchlm.finetune.lora import LoRAConfig, apply_lora, mark_trainable, merge_lora, trainable_report
from scratchlm.interop.model_files import load_model, save_classifier
from scratchlm.interop.peft import save_peft_adapter
from scratchlm.model.gpt import GPT
from scratchlm.model.heads import add_classifier_head, classify_logits
from scratchlm.report import write_report_safely
from scratchlm.train.loop import StepResult, TrainState, train
from scratchlm.train.optim import build_optimizer
from scratchlm.train.runlog import RunLog, read_metrics

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ClassifyConfig:
    """One classification fine-tune. Defaults are the book's: AdamW at a constant 5e-5, weight decay 0.1,
    batch 8, 5 epochs, the last block + final norm + head trained, evaluation every epoch."""

    model: str  # a model directory, a pretrain run directory, or a Hub name ("gpt2")
    data: str  # a .tsv, .csv, .jsonl or .json table
    val: str | None = None  # given validation / test tables; otherwise they are split off `data`
    test: str | None = None
    text_field: str = "text"  # a column name, or a 0-based index (then the table has no header row)
    label_field: str = "label"
    header: bool | None = None  # None: a header row exactly when a field is given by name
    labels: tuple[str, ...] | None = None  # the classes in id order (default: sorted training labels)
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)  # train / val / test, stratified per class
    balance: Literal["none", "undersample", "weights"] = "none"  # of the training split only
    max_length: int | None = None  # default: the longest training text, capped at the context length
    train_layers: str = "last-1"  # head | last-N | all | lora
    lora: LoRAConfig | None = None  # with train_layers "lora" (default LoRAConfig() if None)
    epochs: int = 5
    batch_size: int = 8
    lr: float = 5e-5
    weight_decay: float = 0.1
    warmup_steps: int = 0
    decay: Literal["constant", "cosine", "linear"] = "constant"
    grad_clip: float = 1.0
    eval_interval: int | None = None  # steps; None: once per epoch
    select: Literal["accuracy", "macro_f1", "loss"] = "accuracy"  # which validation score picks the best
    dropout: float | None = None  # None: the pretrained model's
    seed: int = 123
    device: str = "auto"
    log_interval: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "split", tuple(float(f) for f in self.split))
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
        if len(self.split) != 3 or any(f < 0 for f in self.split) or self.split[0] <= 0:
            raise ScratchLMError(f"split: three fractions train,val,test with train > 0, got {self.split}")
        for name in ("epochs", "batch_size", "log_interval"):
            if getattr(self, name) < 1:
                raise ScratchLMError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_length is not None and self.max_length < 1:
            raise ScratchLMError(f"max_length must be at least 1, got {self.max_length}")
        if self.eval_interval is not None and self.eval_interval < 1:
            raise ScratchLMError(f"eval_interval must be at least 1, got {self.eval_interval}")
        for name, allowed in (
            ("balance", ("none", "undersample", "weights")),
            ("decay", ("constant", "cosine", "linear")),
            ("select", ("accuracy", "macro_f1", "loss")),
        ):
            if getattr(self, name) not in allowed:
                raise ScratchLMError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        if self.lr <= 0:
            raise ScratchLMError(f"lr must be > 0, got {self.lr}")
        policy, _ = parse_train_layers(self.train_layers)
        if self.lora is not None and policy != "lora":
            raise ScratchLMError(f"LoRA settings need train_layers 'lora', not {self.train_layers!r}")
        if self.lora is not None and "head" in self.lora.targets:
            raise ScratchLMError("the class head is trained in full: leave 'head' out of the LoRA targets")

    def train_config(self, max_steps: int, eval_interval: int) -> TrainConfig:
        """The loop's settings. betas (0.9, 0.999) are AdamW's defaults, which the book fine-tunes with."""
        return TrainConfig(
            max_steps=max_steps,
            batch_size=self.batch_size,
            lr=self.lr,
            min_lr=self.lr * 0.1,
            warmup_steps=self.warmup_steps,
            decay=self.decay,
            weight_decay=self.weight_decay,
            beta2=0.999,
            grad_clip=self.grad_clip,
            eval_interval=eval_interval,
            log_interval=self.log_interval,
            seed=self.seed,
            device=self.device,
        )


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
    parts = stratified_split(labels, [f / sum(fractions) for f in fractions], cfg.seed)
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


# ---- the shell: a run directory ----------------------------------------------------------------------------
def finetune_classifier(
    cfg: ClassifyConfig, out_dir: str | Path, show_progress: bool = True, command: str | None = None
) -> dict:
    """Fine-tune, evaluate and save a classifier. Returns what eval.json holds.

    Writes to `out_dir`: config.json (these settings), labels.json, metrics.jsonl, curves.png, eval.json
    (test and best-validation metrics), confusion.png (test), the classifier in model/ (LoRA merged in),
    with LoRA the PEFT adapter and the class head in adapter/, and last report.html/report.md (with
    `command`, the command line that started the run, to reproduce it).
    """
    started = time.perf_counter()
    out = Path(out_dir)
    if (out / "model").exists() or (out / "metrics.jsonl").exists():
        raise ScratchLMError(f"{out} already holds a fine-tuning run: choose another --out")
    splits = load_splits(cfg)  # the data's errors come before a slow model load
    labels = label_names(cfg, splits)
    if cfg.balance == "undersample":
        keep = undersample(splits["train"][1], cfg.seed)
        splits["train"] = ([splits["train"][0][i] for i in keep], [splits["train"][1][i] for i in keep])
    model, tokenizer = _load_base(cfg)
    encoded, max_length = encode_splits(cfg, splits, labels, tokenizer, model.cfg.context_length)
    parameters = prepare_classifier(model, len(labels), cfg.train_layers, cfg.lora, cfg.seed)
    device = pick_device(cfg.device)
    model.to(device)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {"format": "scratchlm-finetune-classify", **dataclasses.asdict(cfg)})
    write_json(
        out / "labels.json",
        {
            "id2label": {str(i): y for i, y in enumerate(labels)},
            "label2id": {y: i for i, y in enumerate(labels)},
        },
    )

    pad_id = tokenizer.eot_id if tokenizer.eot_id is not None else 0  # any id: padding is never read
    weight = None
    if cfg.balance == "weights":
        weight = torch.tensor(class_weights(encoded["train"].labels, len(labels)))
    batches = ClassificationBatches(encoded["train"].ids, encoded["train"].labels, pad_id, cfg.seed)
    steps_per_epoch = batches.steps_per_epoch(cfg.batch_size)
    tcfg = cfg.train_config(cfg.epochs * steps_per_epoch, cfg.eval_interval or steps_per_epoch)
    optimizer = build_optimizer(model, tcfg)
    autocast = autocast_for(device)
    torch.manual_seed(cfg.seed)  # dropout
    run = _Run(model, encoded, labels, pad_id, weight, device, autocast, cfg, steps_per_epoch)
    run.runlog = RunLog(out, config=dataclasses.asdict(cfg))
    run.runlog.log(
        {"event": "start", "parameters": parameters, "max_length": max_length, "device": str(device)}
    )
    run.bar = tqdm(total=tcfg.max_steps, desc="finetune classify", disable=not show_progress)
    train_started = time.perf_counter()
    try:
        state = train(
            model,
            batches,
            partial(classification_loss, weight=weight),
            optimizer,
            tcfg,
            device=device,
            autocast=autocast,
            on_step=run.on_step,
        )
        train_seconds = time.perf_counter() - train_started
        run.restore_best()
        test_loss, test = run.score(encoded["test"])
        run.runlog.log(
            {"event": "test", "step": state.step, "test_loss": test_loss, "test_accuracy": test["accuracy"]}
        )
    finally:
        run.bar.close()
        run.runlog.close()

    result = {
        "labels": labels,
        "test": {"loss": test_loss, **test},
        "val": run.best["val"],
        "best": {"step": run.best["step"], "select": cfg.select},
        "parameters": parameters,
        "examples": {n: {y: splits[n][1].count(y) for y in labels} for n in SPLITS},
        "max_length": max_length,
        "truncated": {n: encoded[n].truncated for n in SPLITS},
        "steps": state.step,
        "seconds": {"train": round(train_seconds, 2)},
        "device": str(device),
    }
    plot_confusion(test["confusion"], labels, out / "confusion.png")
    title = f"{out.name}: {Path(cfg.data).name}, train layers {cfg.train_layers}"
    plot_curves(read_metrics(out), out / "curves.png", title=title)
    _save_result(model, tokenizer, cfg, out, labels, max_length, pad_id)
    result["seconds"]["total"] = round(time.perf_counter() - started, 2)
    write_json(out / "eval.json", result)
    write_report_safely(out, command)
    return result


def _load_base(cfg: ClassifyConfig):
    model, tokenizer = load_model(cfg.model)
    if tokenizer is None:
        raise ScratchLMError(f"{cfg.model}: no tokenizer files beside the model")
    if tokenizer.vocab_size > model.cfg.vocab_size:
        raise ScratchLMError(
            f"{cfg.model}: the tokenizer's {tokenizer.vocab_size:,} tokens do not fit the model's "
            f"vocabulary of {model.cfg.vocab_size:,}"
        )
    if cfg.dropout is not None and cfg.dropout != model.cfg.dropout:
        rebuilt = GPT(dataclasses.replace(model.cfg, dropout=cfg.dropout), init=False)
        rebuilt.load_state_dict(model.state_dict())
        model = rebuilt
    return model, tokenizer


def _save_result(model, tokenizer, cfg, out: Path, labels, max_length: int, pad_id: int) -> None:
    """model/ (LoRA merged into the weights) and, with LoRA, adapter/ (PEFT files + the class head)."""
    if parse_train_layers(cfg.train_layers)[0] == "lora":
        save_peft_adapter(model, out / "adapter", base_model_name_or_path=cfg.model)
        head = {
            f"out_head.{k}": v.detach().cpu().contiguous() for k, v in model.out_head.state_dict().items()
        }
        save_file(head, str(out / "adapter" / "classifier_head.safetensors"), metadata={"format": "pt"})
        merge_lora(model, unload=True)
    save_classifier(model, out / "model", tokenizer, labels, max_length, base_model=cfg.model, pad_id=pad_id)


class _Run:
    """Per-step bookkeeping: the log, evaluations, and the best weights so far (trainable ones only)."""

    def __init__(self, model, encoded, labels, pad_id, weight, device, autocast, cfg, steps_per_epoch):
        self.model, self.encoded, self.labels, self.pad_id = model, encoded, labels, pad_id
        self.weight, self.device, self.autocast, self.cfg = weight, device, autocast, cfg
        self.steps_per_epoch = steps_per_epoch
        train = encoded["train"]
        # Training accuracy on a fixed sample: a full pass over the training split would cost an epoch.
        sample = sorted(random.Random(cfg.seed).sample(range(len(train.ids)), min(len(train.ids), 500)))
        self.train_sample = _Encoded([train.ids[i] for i in sample], [train.labels[i] for i in sample], 0)
        self.best: dict = {"key": None, "step": 0, "weights": None, "val": None}
        self.runlog: RunLog | None = None
        self.bar = None

    def score(self, data: _Encoded) -> tuple[float, dict]:
        logits = predict_logits(self.model, data.ids, self.pad_id, self.device, autocast=self.autocast)
        loss = F.cross_entropy(logits, torch.tensor(data.labels), weight=self.weight).item()
        predictions = logits.argmax(-1).tolist()
        return loss, classification_report(
            confusion_matrix(data.labels, predictions, len(self.labels)), self.labels
        )

    def on_step(self, state: TrainState, result: StepResult) -> None:
        epoch = round(result.step / self.steps_per_epoch, 3)
        is_last = result.step == self.cfg.epochs * self.steps_per_epoch
        if result.step % self.cfg.log_interval == 0 or is_last or result.skipped:
            record = {"step": result.step, "epoch": epoch, "loss": result.loss, "lr": result.lr}
            self.runlog.log({**record, "grad_norm": result.grad_norm})
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{result.loss:.4f}")
        interval = self.cfg.eval_interval or self.steps_per_epoch
        if result.step % interval and not is_last:
            return
        val_loss, val = self.score(self.encoded["val"])
        _, train = self.score(self.train_sample)
        self.runlog.log(
            {
                "step": result.step,
                "epoch": epoch,
                "val_loss": val_loss,
                "val_accuracy": val["accuracy"],
                "val_macro_f1": val["macro"]["f1"],
                "train_accuracy": train["accuracy"],
            }
        )
        key = (-val_loss,) if self.cfg.select == "loss" else (_score(val, self.cfg.select), -val_loss)
        if self.best["key"] is None or key > self.best["key"]:
            weights = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
            self.best = {
                "key": key,
                "step": result.step,
                "weights": weights,
                "val": {"loss": val_loss, **val},
            }
        self.bar.set_postfix(loss=f"{result.loss:.4f}", val_acc=f"{val['accuracy']:.3f}")

    def restore_best(self) -> None:
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in self.best["weights"].items():
                params[name].copy_(value)


def _score(report: dict, select: str) -> float:
    return report["accuracy"] if select == "accuracy" else report["macro"]["f1"]
