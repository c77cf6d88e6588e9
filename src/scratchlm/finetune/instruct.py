"""Instruction fine-tuning (the book's chapter 7): a pretrained GPT learns to answer instructions.

The data are conversations rendered by a template (`scratchlm.data.templates`) and collated into
(inputs, targets) with the padding, and optionally the prompt, masked (`scratchlm.data.instructions`); the
loss is `next_token_loss` and the loop is the one training loop. Fully or with LoRA. Around it, the run
directory: metrics.jsonl and loss.png, the best-validation weights kept, then responses generated for the
test split (responses.json), their evaluation (eval.json: response perplexity before and after, exact
match, ROUGE-L, an optional LLM judge), the model directory (`model/`, LoRA merged, with its chat
template) and, with LoRA, the PEFT adapter (`adapter/`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from scratchlm.config import GenerateConfig, TrainConfig
from scratchlm.data.instructions import (
    BOOK_SPLIT,
    Encoded,
    InstructionBatches,
    encode_conversation,
    learns_something,
    read_conversations,
    split_conversations,
)
from scratchlm.data.templates import Message, Template, get_template, save_template
from scratchlm.device import pick_device
from scratchlm.errors import ScratchLMError
from scratchlm.eval.judge import JudgeConfig, judge_responses
from scratchlm.eval.metrics import perplexity_of, response_nll, text_scores
from scratchlm.files import read_json, write_json
from scratchlm.finetune.lora import LoRAConfig, apply_lora, merge_lora, trainable_report
from scratchlm.generate.generate import TokenizerLike, generate_batch
from scratchlm.interop.model_files import load_model, save_model
from scratchlm.model.gpt import GPT
from scratchlm.report import write_report_safely
from scratchlm.train.loop import StepResult, TrainState, evaluate, train
from scratchlm.train.losses import next_token_loss, perplexity
from scratchlm.train.optim import build_optimizer
from scratchlm.train.plots import plot_run
from scratchlm.train.precision import autocast as autocast_factory
from scratchlm.train.precision import resolve_precision
from scratchlm.train.runlog import RunLog

Conversation = list[Message]


@dataclass(frozen=True)
class InstructConfig:
    """What instruction tuning adds to a TrainConfig (whose max_steps is replaced by `epochs` unless
    `max_steps` is given here)."""

    template: str = "alpaca"
    mask_prompt: bool = False  # learn only the responses (the book's exercise 7.2; TRL's completion-only)
    allowed_max_length: int | None = None  # truncate examples to this many tokens; default: the context
    epochs: float = 2.0  # the book trains 2 epochs
    max_steps: int | None = None
    dropout: float = 0.0  # the book fine-tunes with drop_rate 0.0
    max_test: int | None = None  # generate and score at most this many test examples
    baseline: bool = False  # also answer the test split with the base model first, to score before/after
    eval_batch_size: int = 8
    generate: GenerateConfig = field(default_factory=lambda: GenerateConfig(max_new_tokens=256))

    def __post_init__(self) -> None:
        get_template(self.template)
        if self.epochs <= 0 and self.max_steps is None:
            raise ScratchLMError(f"epochs must be > 0, got {self.epochs}")
        if self.allowed_max_length is not None and self.allowed_max_length < 2:
            raise ScratchLMError(f"allowed_max_length must be at least 2, got {self.allowed_max_length}")


def book_train_config(**overrides) -> TrainConfig:
    """The book's chapter-7 optimisation: AdamW, lr 5e-5 held constant (no warmup, no decay), weight decay
    0.1, batches of 8."""
    book = dict(lr=5e-5, min_lr=5e-6, warmup_steps=0, decay="constant", weight_decay=0.1, batch_size=8)
    return TrainConfig(**{**book, **overrides})


@dataclass
class Splits:
    train: list[Conversation]
    val: list[Conversation]
    test: list[Conversation]


def load_splits(
    data: str | os.PathLike,
    val_data: str | os.PathLike | None = None,
    test_data: str | os.PathLike | None = None,
    fractions: Sequence[float] = BOOK_SPLIT,
    seed: int | None = 123,
) -> Splits:
    """Train/val/test conversations: the given files, and a seeded split of `data` for the parts not given
    (their fractions renormalised: with a val file, `data` is cut into train and test only)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ScratchLMError(f"split fractions must be three numbers >= 0 that sum to 1, got {fractions}")
    conversations = read_conversations(data)
    given = [read_conversations(p) if p else None for p in (val_data, test_data)]
    wanted = [
        fractions[0],
        fractions[1] if given[0] is None else 0.0,
        fractions[2] if given[1] is None else 0.0,
    ]
    total = sum(wanted)
    if total <= 0:
        raise ScratchLMError("the split fractions leave nothing for training")
    train, val, test = split_conversations(conversations, [f / total for f in wanted], seed)
    if given[0] is not None:  # what the cut leaves over is the val part's: train on it
        train, val = train + val, given[0]
    return Splits(train, val, given[1] if given[1] is not None else test)


def finetune_instruct(
    model_spec: str | os.PathLike,
    splits: Splits,
    out_dir: str | os.PathLike,
    cfg: InstructConfig | None = None,
    train_cfg: TrainConfig | None = None,
    lora: LoRAConfig | None = None,
    judge: JudgeConfig | None = None,
    show_progress: bool = True,
    command: str | None = None,
) -> dict:
    """Fine-tune the model `model_spec` names on `splits` and write the run directory, its report last (with
    `command`, the command line that started the run, to reproduce it); returns eval.json."""
    cfg, train_cfg = cfg or InstructConfig(), train_cfg or book_train_config()
    out = Path(out_dir)
    if (out / "metrics.jsonl").exists():
        raise ScratchLMError(f"{out} already holds a fine-tuning run: choose another --out")
    started = time.perf_counter()
    torch.manual_seed(train_cfg.seed)
    template = get_template(cfg.template)
    model, tokenizer = _load_base(model_spec, cfg.dropout)
    allowed = cfg.allowed_max_length or model.cfg.context_length
    if allowed > model.cfg.context_length:
        raise ScratchLMError(
            f"allowed_max_length {allowed} is longer than the model's context ({model.cfg.context_length})"
        )
    encoded, tests, dropped = _encode_splits(splits, template, tokenizer, allowed)
    steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(encoded["train"]) / train_cfg.batch_size))
    train_cfg = replace(train_cfg, max_steps=steps)
    device = pick_device(train_cfg.device)
    model.to(device)
    config = {
        "model": str(model_spec),
        "instruct": asdict(cfg),
        "train": asdict(train_cfg),
        "lora": lora.to_dict() if lora else None,
        "judge": {"url": judge.url, "model": judge.model} if judge else None,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "finetune_config.json", config)
    runlog = RunLog(out, train_cfg.loggers, config)
    test_batches = _response_batches(encoded["test"], tokenizer.eot_id, allowed, cfg.eval_batch_size)
    nll_before, response_tokens = response_nll(model, test_batches, device)
    before = None
    if cfg.baseline and tests:
        model.eval()  # greedy answers: no dropout (training switches modes itself)
        before = _generate_tests(model, tokenizer, template, tests, cfg)
    counts = {name: len(examples) for name, examples in encoded.items()}
    result: dict = {
        "template": template.name,
        "mask_prompt": cfg.mask_prompt,
        "lora": lora.to_dict() if lora else None,
        "examples": {**counts, "dropped_too_long": dropped},
        "allowed_max_length": allowed,
        "steps": steps,
    }
    if before is not None:
        result["baseline_seconds"] = round(before[1], 2)
    runlog.log({"event": "data", **result["examples"], "allowed_max_length": allowed})
    try:
        result["trainable_parameters"] = apply_lora(model, lora) if lora else trainable_report(model)
        runlog.log({"event": "trainable_parameters", **result["trainable_parameters"]})
        best = _train(
            model, encoded, tokenizer.eot_id, allowed, cfg, train_cfg, device, runlog, show_progress
        )
        result |= {"best_step": best["step"], "best_val_loss": best["val_loss"]}
        if lora is not None:
            from scratchlm.interop.peft import save_peft_adapter

            result["adapter_dir"] = str(save_peft_adapter(model, out / "adapter", str(model_spec)))
            merge_lora(model, unload=True)
        result["train_seconds"] = round(time.perf_counter() - started - (before[1] if before else 0), 2)
        if tests:
            nll_after, _ = response_nll(model, test_batches, device)
            result["test_response_nll"] = {"before": nll_before, "after": nll_after}
            result["test_response_ppl"] = {
                "before": perplexity_of(nll_before),
                "after": perplexity_of(nll_after),
            }
            result["test_response_tokens"] = response_tokens
            result |= _respond(model, tokenizer, template, tests, cfg, out, before)
            if judge is not None:
                result["judge"] = _judge(out, judge)
        model.to("cpu")
        save_model(model, out / "model", tokenizer)
        save_template(template, out / "model")
        result["model_dir"] = str(out / "model")
        result["total_seconds"] = round(time.perf_counter() - started, 2)
        write_json(out / "eval.json", _finite(result))
        runlog.log({"event": "done", "total_seconds": result["total_seconds"]})
        plot_run(out)
    finally:
        runlog.close()
    write_report_safely(out, command)
    return result


# ---- steps of the run ----------------------------------------------------------------------------------


def _load_base(model_spec, dropout: float) -> tuple[GPT, object]:
    model, tokenizer = load_model(model_spec)
    if tokenizer is None:
        raise ScratchLMError(f"{model_spec}: no tokenizer beside the model")
    if tokenizer.eot_id is None:
        raise ScratchLMError(f"{model_spec}: the tokenizer has no <|endoftext|>, which ends every example")
    if model.cfg.dropout != dropout:  # dropout is fixed when the modules are built
        rebuilt = GPT(replace(model.cfg, dropout=dropout), init=False)
        rebuilt.load_state_dict(model.state_dict())
        model = rebuilt
    return model, tokenizer


def _encode_splits(splits: Splits, template: Template, tokenizer, allowed: int):
    """Encoded examples per split, minus those whose response would be cut off entirely (the model would
    learn nothing from them, and a batch of only masked targets has no loss)."""
    encoded: dict[str, list[Encoded]] = {}
    dropped = 0
    for name in ("train", "val", "test"):
        examples = [encode_conversation(template, tokenizer, c) for c in getattr(splits, name)]
        kept = [e for e in examples if learns_something(e, allowed)]
        dropped += len(examples) - len(kept)
        if name == "test":  # the generated responses are matched to the conversations by index
            test = [c for c, e in zip(splits.test, examples) if learns_something(e, allowed)]
        encoded[name] = kept
    for name in ("train", "val"):
        if not encoded[name]:
            raise ScratchLMError(
                f"the {name} split is empty (after dropping {dropped} examples longer than {allowed} tokens)"
            )
    return encoded, test, dropped


def _response_batches(examples: list[Encoded], pad: int, allowed: int, batch_size: int):
    """Batches scoring the responses only (prompt masked), whatever the training masked."""
    if not examples:
        return []
    return list(InstructionBatches(examples, pad, allowed, mask_prompt=True).iter_sequential(batch_size))


def _train(model, encoded, pad, allowed, cfg, train_cfg, device, runlog, show_progress) -> dict:
    """The one training loop, validation every `eval_interval` steps and at the end; the best validation
    weights are kept and restored at the end. Returns {"step", "val_loss"} of the best evaluation."""
    batches = InstructionBatches(encoded["train"], pad, allowed, cfg.mask_prompt, seed=train_cfg.seed)
    val = list(
        InstructionBatches(encoded["val"], pad, allowed, cfg.mask_prompt).iter_sequential(cfg.eval_batch_size)
    )
    precision = resolve_precision(train_cfg.precision, device)
    autocast = autocast_factory(precision, device)
    # fp16 needs loss scaling (its gradients underflow); bf16 and fp32 do not.
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    optimizer = build_optimizer(model, train_cfg)
    best = {"step": 0, "val_loss": math.inf, "weights": None}

    def validate(step: int) -> None:
        val_loss = evaluate(model, val, next_token_loss, device, autocast)
        runlog.log({"step": step, "val_loss": val_loss, "val_ppl": perplexity(val_loss)})
        if val_loss < best["val_loss"]:
            trained = {
                n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad
            }
            best.update(step=step, val_loss=val_loss, weights=trained)

    bar = tqdm(total=train_cfg.max_steps, desc="finetune instruct", disable=not show_progress)

    def on_step(state: TrainState, result: StepResult) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{result.loss:.4f}")
        if result.step % train_cfg.log_interval == 0 or result.step == train_cfg.max_steps:
            runlog.log(
                {
                    "step": result.step,
                    "loss": result.loss,
                    "lr": result.lr,
                    "grad_norm": result.grad_norm,
                    "tokens": state.tokens,
                    "tokens_per_s": round(result.tokens / max(result.seconds, 1e-9), 1),
                }
            )
        if result.step % train_cfg.eval_interval == 0 or result.step == train_cfg.max_steps:
            validate(result.step)
            model.train()

    validate(0)
    try:
        train(
            model,
            batches,
            next_token_loss,
            optimizer,
            train_cfg,
            device=device,
            autocast=autocast,
            scaler=scaler,
            on_step=on_step,
        )
    finally:
        bar.close()
    model.eval()
    if best["weights"] is not None and best["step"] != train_cfg.max_steps:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in best["weights"]:
                    p.copy_(best["weights"][name])
    runlog.log({"event": "best_model", "step": best["step"], "val_loss": best["val_loss"]})
    return {"step": best["step"], "val_loss": best["val_loss"]}


def _generate_tests(model, tokenizer, template, tests, cfg) -> tuple[list[str], float]:
    """The model's replies to the test split's prompts (at most max_test), and the seconds they took."""
    conversations = tests[: cfg.max_test] if cfg.max_test else tests
    t0 = time.perf_counter()
    responses = generate_responses(model, tokenizer, template, [c[:-1] for c in conversations], cfg)
    return responses, time.perf_counter() - t0


def _respond(model, tokenizer, template, tests, cfg, out: Path, before=None) -> dict:
    """Responses for the test split (responses.json), and their exact match and ROUGE-L; with `before`
    (the base model's replies and their seconds) those too, scored the same way."""
    responses, seconds = _generate_tests(model, tokenizer, template, tests, cfg)
    records = [_record(c, r) for c, r in zip(tests, responses)]
    references = [r["reference"] for r in records]
    scores = text_scores(responses, references)
    result = {
        "exact_match": scores["exact_match"],
        "first_clause_match": scores["first_clause_match"],
        "rouge_l": scores["rouge_l"],
        "responses": len(records),
        "generate_seconds": round(seconds, 2),
    }
    if before is not None:
        for record, response in zip(records, before[0]):
            record["response_before"] = response
        baseline = text_scores(before[0], references)
        result["before"] = {k: baseline[k] for k in ("exact_match", "first_clause_match", "rouge_l")}
    write_json(out / "responses.json", records)
    return result


def generate_responses(
    model: GPT,
    tokenizer: TokenizerLike,
    template: Template,
    prompts: Sequence[Conversation],
    cfg: InstructConfig | None = None,
) -> list[str]:
    """The model's reply to each conversation (greedy by default), cut at end-of-text or a template stop
    string. Prompts go in batches of similar length, so little of each batch is padding."""
    cfg = cfg or InstructConfig()
    ids = [tokenizer.encode_ordinary(template.generation_prompt(p)) for p in prompts]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    replies: list[str] = [""] * len(ids)
    eot = tokenizer.eot_id
    for start in range(0, len(order), cfg.eval_batch_size):
        chunk = order[start : start + cfg.eval_batch_size]
        rows = generate_batch(model, [ids[i] for i in chunk], cfg.generate, eos_id=eot)
        for i, row in zip(chunk, rows):
            if row and row[-1] == eot:
                row = row[:-1]
            replies[i] = cut_at_stop(tokenizer.decode(row), (*cfg.generate.stop, *template.stop)).strip()
    return replies


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """`text` up to the earliest stop string.

    >>> cut_at_stop("Paris.<|im_end|>\\n<|im_start|>user", ["<|im_end|>"])
    'Paris.'
    """
    cuts = [i for i in (text.find(s) for s in stops if s) if i != -1]
    return text[: min(cuts)] if cuts else text


def _record(conversation: Conversation, response: str) -> dict:
    """A responses.json entry: instruction, input, reference, response (and the earlier messages of a
    conversation that is more than one instruction and one reply)."""
    *prompt, reply = conversation
    user = next(m for m in reversed(prompt) if m["role"] == "user")
    record = {"instruction": user["content"], "input": user.get("input", ""), "reference": reply["content"]}
    record["response"] = response
    if len(prompt) > 1:
        record["messages"] = [{"role": m["role"], "content": m["content"]} for m in prompt]
    return record


def _judge(out: Path, judge: JudgeConfig) -> dict:
    """Score responses.json with the judge; each record gets its `judge_score`."""
    records = read_json(out / "responses.json")
    judged = judge_responses(records, judge)
    for record, result in zip(records, judged["results"]):
        record["judge_score"] = result["score"]
    write_json(out / "responses.json", records)
    return {k: v for k, v in judged.items() if k != "results"}


def _finite(value):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
