"""Instruction fine-tuning (the book's chapter 7) as a task of the run session: a pretrained GPT learns to
answer instructions.

The data are conversations rendered by a template (`scratchlm.data.templates`) and collated into
(inputs, targets) with the padding, and optionally the prompt, masked (`scratchlm.data.instructions`); the
loss is `next_token_loss`. Fully or with LoRA. Besides the session's files: baseline.json (the base model's
response perplexity, and with `instruct.baseline` its answers), then after training responses for the test
split (responses.json), their evaluation (eval.json: response perplexity before and after, exact match,
ROUGE-L, an optional LLM judge), the model directory (`model/`, LoRA merged, with its chat template) and,
with LoRA, the PEFT adapter (`adapter/`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from scratchlm.config import GenerateConfig, JudgeConfig, RunConfig
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
from scratchlm.errors import ScratchLMError
from scratchlm.eval.judge import judge_responses
from scratchlm.eval.metrics import perplexity_of, response_nll, text_scores
from scratchlm.files import read_json, write_json
from scratchlm.formats.model_files import save_model
from scratchlm.generate.generate import generate_batch
from scratchlm.model.gpt import GPT
from scratchlm.model.lora import apply_lora, merge_lora, trainable_report
from scratchlm.results import check_result
from scratchlm.tokenizer.protocol import TokenizerLike
from scratchlm.train.loop import TrainState, evaluate
from scratchlm.train.losses import next_token_loss, perplexity
from scratchlm.train.plots import plot_run
from scratchlm.train.session import Outcome, Session, load_init, run_session

Conversation = list[Message]


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


class InstructTask:
    """The session's instruction-tuning task: the base is validated first, the best validation loss's
    weights are the result."""

    eval_at_start = True
    restore_best = True
    result_file = "eval.json"
    flops_per_token = None

    def __init__(self, cfg: RunConfig, out: Path, resume: bool) -> None:
        task = cfg.instruct
        if task is None or not task.data:
            raise ScratchLMError("an instruct run needs its examples: set instruct.data (--data)")
        splits = load_splits(task.data, task.val, task.test, task.split, task.split_seed)
        self.template = get_template(task.template)
        model, tokenizer, cfg = load_init(cfg)
        if tokenizer is None:
            raise ScratchLMError(f"{cfg.train.init}: no tokenizer beside the model")
        if tokenizer.eot_id is None:
            raise ScratchLMError(
                f"{cfg.train.init}: the tokenizer has no <|endoftext|>, which ends every example"
            )
        allowed = task.max_length or model.cfg.context_length
        context = model.cfg.context_length
        if allowed > context:
            raise ScratchLMError(
                f"instruct.max_length {allowed} is longer than the model's context ({context})"
            )
        self.encoded, self.tests, self.dropped = _encode_splits(splits, self.template, tokenizer, allowed)
        n_train, batch = len(self.encoded["train"]), cfg.train.batch_size
        self.max_steps = (
            max(1, math.ceil(task.epochs * n_train / batch))
            if task.epochs is not None
            else cfg.train.max_steps
        )
        self.steps_per_epoch = None
        self.allowed = allowed
        self.test_batches = _response_batches(
            self.encoded["test"], tokenizer.eot_id, allowed, task.eval_batch_size
        )
        self.baseline_file = out / "baseline.json"
        self.cfg, self.model, self.tokenizer = cfg, model, tokenizer
        # The base model's scores, made at the start (start()); a resumed run reads them back.
        self.baseline = read_json(self.baseline_file) if resume and self.baseline_file.is_file() else None
        self.parameters = apply_lora(model, cfg.lora) if cfg.lora else trainable_report(model)
        eot = tokenizer.eot_id
        self.batches = InstructionBatches(
            self.encoded["train"], eot, allowed, task.mask_prompt, seed=cfg.train.seed
        )
        self.val = list(
            InstructionBatches(self.encoded["val"], eot, allowed, task.mask_prompt).iter_sequential(
                task.eval_batch_size
            )
        )

    def _score_base(self, model: GPT, device) -> dict:
        """The base model's response NLL on the test split and, with `instruct.baseline`, its answers."""
        nll, tokens = response_nll(model, self.test_batches, device)
        baseline: dict = {"test_response_nll": nll, "test_response_tokens": tokens}
        if self.cfg.instruct.baseline and self.tests:
            model.eval()  # greedy answers: no dropout (training switches modes itself)
            baseline["responses"], baseline["seconds"] = self._answer(model)
        return baseline

    def _answer(self, model: GPT) -> tuple[list[str], float]:
        """The model's replies to the test split's prompts (at most max_test), and the seconds they took."""
        task = self.cfg.instruct
        conversations = self.tests[: task.max_test] if task.max_test else self.tests
        t0 = time.perf_counter()
        prompts = [c[:-1] for c in conversations]
        replies = generate_responses(
            model, self.tokenizer, self.template, prompts, self.cfg.generate, task.eval_batch_size
        )
        return replies, time.perf_counter() - t0

    @staticmethod
    def loss(model: torch.nn.Module, batch) -> torch.Tensor:
        return next_token_loss(model, batch)

    def start(self, session: Session) -> None:
        if self.baseline is None:  # LoRA's B matrices are zero: the adapted model is still the base
            self.baseline = self._score_base(session.model, session.device)
            write_json(self.baseline_file, self.baseline)
        counts = {name: len(examples) for name, examples in self.encoded.items()}
        session.log({"event": "data", **counts, "dropped_too_long": self.dropped, "max_length": self.allowed})
        session.log({"event": "trainable_parameters", **self.parameters})

    def evaluate(self, session: Session, step: int) -> tuple[dict, tuple[float, ...]]:
        val_loss = evaluate(session.model, self.val, next_token_loss, session.device, session.autocast)
        return {"val_loss": val_loss, "val_ppl": perplexity(val_loss)}, (-val_loss,)

    def plot(self, out: Path) -> None:
        plot_run(out)

    def finish(self, session: Session, state: TrainState) -> dict:
        cfg, task, out, model = self.cfg, self.cfg.instruct, session.out, session.model
        counts = {name: len(examples) for name, examples in self.encoded.items()}
        result: dict = {
            "template": self.template.name,
            "mask_prompt": task.mask_prompt,
            "lora": cfg.lora.to_dict() if cfg.lora else None,
            "examples": {**counts, "dropped_too_long": self.dropped},
            "max_length": self.allowed,
            "steps": state.step,
            "parameters": self.parameters,
            "best_step": state.best_step,
            "best_val_loss": -state.best_key[0] if state.best_key else None,
            "train_seconds": round(state.seconds, 2),
        }
        before = None
        if "responses" in self.baseline:
            before = self.baseline["responses"]
            result["baseline_seconds"] = round(self.baseline["seconds"], 2)
        if cfg.lora is not None:
            from scratchlm.interop.peft import save_adapter_if_possible

            adapter = save_adapter_if_possible(model, out / "adapter", str(cfg.train.init), session.log)
            if adapter is not None:
                result["adapter_dir"] = str(adapter)
            merge_lora(model, unload=True)
        if self.tests:
            nll_before = self.baseline["test_response_nll"]
            nll_after, _ = response_nll(model, self.test_batches, session.device)
            result["test_response_nll"] = {"before": nll_before, "after": nll_after}
            result["test_response_ppl"] = {
                "before": perplexity_of(nll_before),
                "after": perplexity_of(nll_after),
            }
            result["test_response_tokens"] = self.baseline["test_response_tokens"]
            result |= self._respond(model, out, before)
            if cfg.judge is not None:
                result["judge"] = _judge(out, cfg.judge)
        model.to("cpu")
        save_model(model, out / "model", self.tokenizer)
        save_template(self.template, out / "model")
        result["model_dir"] = str(out / "model")
        return check_result("instruct", result)

    def _respond(self, model: GPT, out: Path, before: list[str] | None) -> dict:
        """Responses for the test split (responses.json), and their exact match and ROUGE-L; with `before`
        (the base model's replies) those too, scored the same way."""
        responses, seconds = self._answer(model)
        records = [_record(c, r) for c, r in zip(self.tests, responses)]
        references = [r["reference"] for r in records]
        scores = text_scores(responses, references)
        result = {key: scores[key] for key in ("exact_match", "first_clause_match", "rouge_l")}
        result |= {"responses": len(records), "generate_seconds": round(seconds, 2)}
        if before is not None:
            for record, response in zip(records, before):
                record["response_before"] = response
            baseline = text_scores(before, references)
            result["before"] = {k: baseline[k] for k in ("exact_match", "first_clause_match", "rouge_l")}
        write_json(out / "responses.json", records)
        return result


def finetune_instruct(
    cfg: RunConfig, out_dir: str | os.PathLike, resume: bool = False, show_progress: bool = True
) -> Outcome:
    """Instruction-tune `train.init` on `instruct.data` in `out_dir` (or continue the run there); the
    outcome's `result` is eval.json."""
    if cfg.kind != "instruct":
        raise ScratchLMError(f"finetune_instruct: the config is of a {cfg.kind} run")
    return run_session(cfg, InstructTask, out_dir, resume, show_progress)


def generate_responses(
    model: GPT,
    tokenizer: TokenizerLike,
    template: Template,
    prompts: Sequence[Conversation],
    generate: GenerateConfig | None = None,
    batch_size: int = 8,
) -> list[str]:
    """The model's reply to each conversation (greedy by default), cut at end-of-text or a template stop
    string. Prompts go in batches of similar length, so little of each batch is padding."""
    generate = generate or GenerateConfig(max_new_tokens=256)
    ids = [tokenizer.encode_ordinary(template.generation_prompt(p)) for p in prompts]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    replies: list[str] = [""] * len(ids)
    eot = tokenizer.eot_id
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        rows = generate_batch(model, [ids[i] for i in chunk], generate, eos_id=eot)
        for i, row in zip(chunk, rows):
            if row and row[-1] == eot:
                row = row[:-1]
            replies[i] = cut_at_stop(tokenizer.decode(row), (*generate.stop, *template.stop)).strip()
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
