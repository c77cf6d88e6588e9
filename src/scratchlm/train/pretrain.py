"""Pretraining as a task of the run session: next-token prediction on text files or token shards.

The data (text tokenized on the fly, or shards from `scratchlm data prepare`), the model (from scratch,
or continued from `train.init`, optionally through a LoRA adapter), the validation loss in nats, perplexity
and bits per byte, and a sample of text at each evaluation (`samples.jsonl`). The session does the rest.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from scratchlm.config import RunConfig
from scratchlm.data.shards import ShardDataset, WindowSampler
from scratchlm.device import pick_device
from scratchlm.errors import ScratchLMError
from scratchlm.formats.tokenizer_files import load_tokenizer, save_tokenizer
from scratchlm.generate.generate import generate_text
from scratchlm.model.gpt import GPT
from scratchlm.model.lora import apply_lora
from scratchlm.model.sizing import flops_per_token
from scratchlm.tokenizer.corpus import expand_inputs, plan_blocks, read_block
from scratchlm.train.distributed import rank0_value
from scratchlm.train.loop import TrainState, evaluate
from scratchlm.train.losses import bits_per_byte, next_token_loss, perplexity
from scratchlm.train.perf import step_seconds
from scratchlm.train.plots import plot_run
from scratchlm.train.session import Outcome, Session, load_init, run_session


def load_text_data(cfg: RunConfig, tokenizer):
    """(train sampler, val sampler, val tokens per byte) from text files: each file's ids plus
    `<|endoftext|>`, concatenated; the last `val_fraction` of the ids is held out."""
    ids: list[int] = []
    for path in expand_inputs(cfg.data.inputs):
        text = "".join(read_block(b) for b in plan_blocks(path))
        ids += tokenizer.encode_ordinary(text)
        if tokenizer.eot_id is not None:
            ids.append(tokenizer.eot_id)
    tokens = np.array(ids, dtype=np.int64)
    cut = int(len(tokens) * (1 - cfg.data.val_fraction))
    train_ids, val_ids = tokens[:cut], tokens[cut:]
    T = window_length(cfg)
    if len(val_ids) <= T:
        raise ScratchLMError(
            f"the validation part ({len(val_ids):,} tokens) is shorter than one window of {T + 1}: "
            "use more text, a larger data.val_fraction or a smaller data.seq_len"
        )
    val_bytes = len(tokenizer.decode(val_ids.tolist()).encode("utf-8"))
    return (
        WindowSampler([train_ids], T, cfg.train.seed),
        WindowSampler([val_ids], T, cfg.train.seed),
        len(val_ids) / max(1, val_bytes),
    )


def window_length(cfg: RunConfig) -> int:
    """Tokens per training window: data.seq_len, at most the model's context length (its default)."""
    length = cfg.data.seq_len or cfg.model.context_length
    if length > cfg.model.context_length:
        raise ScratchLMError(
            f"data.seq_len {length:,} is longer than the model's context length {cfg.model.context_length:,}"
        )
    return length


class PretrainTask:
    """Next-token prediction; the last weights are the run's (best.json names the best checkpoint)."""

    eval_at_start = False
    restore_best = False
    result_file = None

    def __init__(self, cfg: RunConfig, out: Path, resume: bool) -> None:
        if not cfg.data.shards and not cfg.data.inputs:
            raise ScratchLMError(
                "no training data: set data.inputs (text files) or data.shards (a shard directory)"
            )
        model, own = None, None
        if cfg.train.init:  # continued pretraining: the architecture (and tokenizer) are the weights'
            model, own, cfg = load_init(cfg)
        if cfg.data.shards:
            tokenizer = load_tokenizer(Path(cfg.data.shards) / "tokenizer")
        elif cfg.data.tokenizer is not None:
            tokenizer = load_tokenizer(cfg.data.tokenizer)
        else:
            tokenizer = own if own is not None else load_tokenizer("gpt2")
        if cfg.data.shards:
            T = window_length(cfg)
            self.batches = ShardDataset(cfg.data.shards, "train", context_length=T, seed=cfg.train.seed)
            self.val_data = ShardDataset(cfg.data.shards, "val", context_length=T, seed=cfg.train.seed)
            self.tokens_per_byte = None
        else:
            self.batches, self.val_data, self.tokens_per_byte = load_text_data(cfg, tokenizer)
        if cfg.model.vocab_size < tokenizer.vocab_size:
            raise ScratchLMError(
                f"model.vocab_size {cfg.model.vocab_size:,} is smaller than the tokenizer's "
                f"{tokenizer.vocab_size:,}"
            )
        model = model or GPT(cfg.model)  # after the data: their errors come before a slow build
        # With LoRA the base is frozen; only the adapter trains (and is checkpointed with it).
        self.lora_report = apply_lora(model, cfg.lora) if cfg.lora is not None else None
        if cfg.train.max_minutes and not resume:  # resumed: the steps the run chose when it started
            cfg = fit_to_budget(cfg, model)
        self.cfg, self.model, self.tokenizer = cfg, model, tokenizer
        self.max_steps = cfg.train.max_steps
        self.steps_per_epoch = None
        # attention's share counted over the windows trained on
        self.flops_per_token = flops_per_token(replace(cfg.model, context_length=window_length(cfg)))

    @staticmethod
    def loss(model: torch.nn.Module, batch) -> torch.Tensor:
        return next_token_loss(model, batch)

    def start(self, session: Session) -> None:
        if session.is_main:
            save_tokenizer(self.tokenizer, session.out / "tokenizer")
        if self.lora_report is not None:
            session.log({"event": "lora", **self.lora_report})

    def evaluate(self, session: Session, step: int) -> tuple[dict, tuple[float, ...]]:
        t = self.cfg.train
        batches = self.val_data.iter_sequential(t.batch_size)
        limited = (b for _, b in zip(range(t.eval_batches), batches))
        val_loss = evaluate(session.model, limited, next_token_loss, session.device, session.autocast)
        record = {"val_loss": val_loss, "val_ppl": perplexity(val_loss)}
        if self.tokens_per_byte is not None:
            record["val_bpb"] = bits_per_byte(val_loss, self.tokens_per_byte)
        sample = generate_text(session.model, self.tokenizer, t.sample_prompt, max_new_tokens=t.sample_tokens)
        with (session.out / "samples.jsonl").open("a", encoding="utf-8") as samples:
            samples.write(json.dumps({"step": step, "prompt": t.sample_prompt, "text": sample}) + "\n")
        return record, (-val_loss,)

    def plot(self, out: Path) -> None:
        plot_run(out)

    def finish(self, session: Session, state: TrainState) -> dict:
        if self.cfg.lora is not None:  # the adapter alone, in PEFT's format, for the base
            from scratchlm.interop.peft import save_adapter_if_possible

            save_adapter_if_possible(session.model, session.out / "adapter", self.cfg.train.init, session.log)
        return {"step": state.step, "best_step": state.best_step}


def fit_to_budget(cfg: RunConfig, model: torch.nn.Module) -> RunConfig:
    """The run with `train.max_steps` = the steps that fit `train.max_minutes`, by the step time of a
    throwaway copy of `model` measured on the run's device for a few seconds (process 0's measurement in
    a torchrun job, so every process takes as many steps)."""
    t = cfg.train
    budget_s = t.max_minutes * 60
    device = pick_device(t.device)  # "cuda" is the current device, which torchrun's setup made this rank's
    T = window_length(cfg)
    ids = np.random.default_rng(t.seed).integers(0, cfg.model.vocab_size, T * t.batch_size * 64)
    seconds = min(8.0, max(2.0, budget_s / 30))
    step_s = step_seconds(cfg.model, t, ids, t.seed, seconds, model=model, device=device)
    step_s = rank0_value(step_s, device)
    steps = max(t.warmup_steps + 1, int(budget_s / step_s))
    return replace(cfg, train=replace(t, max_steps=steps))


def pretrain(
    cfg: RunConfig, out_dir: str | Path, resume: bool = False, show_progress: bool = True
) -> Outcome:
    """Train (or resume) the pretraining run in `out_dir`."""
    if cfg.kind != "pretrain":
        raise ScratchLMError(f"pretrain: the config is of a {cfg.kind} run")
    return run_session(cfg, PretrainTask, out_dir, resume, show_progress)
