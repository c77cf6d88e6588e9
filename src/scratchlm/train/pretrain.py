"""`pretrain`: a run directory that explains itself, around the one training loop.

The shell of stage 6: it reads the data, builds the model on its device, logs `metrics.jsonl` and
`samples.jsonl`, evaluates, checkpoints, resumes, stops cleanly on SIGINT/SIGTERM and rolls back after
non-finite steps. `config.json` and the tokenizer sit beside the checkpoints.
"""

from __future__ import annotations

import json
import random
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from scratchlm.config import ModelConfig, RunConfig, from_dict
from scratchlm.data.shards import ShardDataset, WindowSampler
from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json
from scratchlm.generate.generate import generate_text
from scratchlm.interop.tokenizer_files import load_tokenizer, save_tokenizer
from scratchlm.model.gpt import GPT
from scratchlm.model.sizing import flops_per_token
from scratchlm.report import write_report_safely
from scratchlm.tokenizer.corpus import expand_inputs, plan_blocks, read_block
from scratchlm.train import checkpoint as ckpt
from scratchlm.train.distributed import setup_processes
from scratchlm.train.loop import NonFiniteTraining, StepResult, TrainState, evaluate, train
from scratchlm.train.losses import bits_per_byte, next_token_loss, perplexity
from scratchlm.train.optim import build_optimizer
from scratchlm.train.perf import keep_heap, mfu, peak_flops
from scratchlm.train.plots import plot_run
from scratchlm.train.precision import autocast as autocast_factory
from scratchlm.train.precision import resolve_precision
from scratchlm.train.runlog import RunLog


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
    T = cfg.model.context_length
    if len(val_ids) <= T:
        raise ScratchLMError(
            f"the validation part ({len(val_ids):,} tokens) is shorter than one window of {T + 1}: "
            "use more text, a larger data.val_fraction or a smaller model.context_length"
        )
    val_bytes = len(tokenizer.decode(val_ids.tolist()).encode("utf-8"))
    return (
        WindowSampler([train_ids], T, cfg.train.seed),
        WindowSampler([val_ids], T, cfg.train.seed),
        len(val_ids) / max(1, val_bytes),
    )


def pretrain(
    cfg: RunConfig,
    out_dir: str | Path,
    resume: bool = False,
    show_progress: bool = True,
    command: str | None = None,
) -> TrainState:
    """Train (or resume) the run in `out_dir`, ending with its report; `command`, the command line that
    started it, goes into the report to reproduce the run."""
    out = Path(out_dir)
    rank, world, device = setup_processes(cfg.train.device)
    is_main = rank == 0
    if cfg.train.keep_heap and device.type == "cpu":
        keep_heap()
    if not resume and (out / "checkpoints").exists():
        raise ScratchLMError(f"{out} already holds a run: pass --resume to continue it, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    stale = ckpt.clean_stale(out) if is_main else []
    random.seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)

    if cfg.data.shards:
        tokenizer = load_tokenizer(Path(cfg.data.shards) / "tokenizer")
        train_data = ShardDataset(
            cfg.data.shards, "train", context_length=cfg.model.context_length, seed=cfg.train.seed
        )
        val_data = ShardDataset(
            cfg.data.shards, "val", context_length=cfg.model.context_length, seed=cfg.train.seed
        )
        tokens_per_byte = None
    elif cfg.data.inputs:
        tokenizer = load_tokenizer(cfg.data.tokenizer)
        train_data, val_data, tokens_per_byte = load_text_data(cfg, tokenizer)
    else:
        raise ScratchLMError(
            "no training data: set data.inputs (text files) or data.shards (a shard directory)"
        )
    if cfg.train.init:
        # Continued pretraining: the architecture is the initial weights' (dropout from this config).
        from scratchlm.interop.model_files import load_model

        if resume:
            saved = read_json(out / "config.json")["model"]
            cfg = replace(cfg, model=from_dict(ModelConfig, saved))
            model = GPT(cfg.model, init=False)
        else:
            loaded, _ = load_model(cfg.train.init)
            cfg = replace(cfg, model=replace(loaded.cfg, dropout=cfg.model.dropout))
            model = GPT(cfg.model, init=False)
            model.load_state_dict(loaded.state_dict())
    else:
        model = GPT(cfg.model)
    if cfg.model.vocab_size < tokenizer.vocab_size:
        raise ScratchLMError(
            f"model.vocab_size {cfg.model.vocab_size:,} is smaller than the tokenizer's "
            f"{tokenizer.vocab_size:,}"
        )
    lora_report = None
    if cfg.lora is not None:  # the base is frozen; only the adapter trains (and is checkpointed with it)
        from scratchlm.finetune.lora import apply_lora

        lora_report = apply_lora(model, cfg.lora)
    model = model.to(device)
    for data in (train_data,):
        data.rank, data.world_size = rank, world
    optimizer = build_optimizer(model, cfg.train)
    precision = resolve_precision(cfg.train.precision, device)
    # fp16 needs loss scaling (its gradients underflow); bf16 and fp32 do not.
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    state = TrainState()
    if resume:
        latest = ckpt.latest_checkpoint(out)
        if latest is None:
            raise ScratchLMError(f"{out}: no complete checkpoint to resume from")
        state, data_state, saved = ckpt.load_checkpoint(latest, model, optimizer, scaler)
        if saved.get("model") != cfg.model.to_dict():
            raise ScratchLMError(
                f"{latest}: the checkpoint's model config differs from this run's: cannot resume"
            )
        train_data.load_state_dict(data_state)
    if is_main:
        write_json(out / "config.json", cfg.to_dict())
        save_tokenizer(tokenizer, out / "tokenizer")
    autocast = autocast_factory(precision, device)
    run = _Run(cfg, out, model, optimizer, train_data, val_data, tokenizer, tokens_per_byte, device, autocast)
    run.is_main, run.scaler, run.world = is_main, scaler, world
    run.runlog = RunLog(out, cfg.train.loggers, cfg.to_dict(), enabled=is_main)
    if is_main:
        run.peak, source = (
            (cfg.train.peak_flops, "train.peak_flops")
            if cfg.train.peak_flops > 0
            else (peak_flops(device, precision))
        )
        run.log({"event": "peak_flops", "flops": run.peak, "source": source, "precision": precision})
    trained = model
    if world > 1:  # gradients averaged across processes; rank 0 logs, evaluates and checkpoints
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.train.compile:  # the training step only: evaluation and sampling run the eager `model`
        trained = torch.compile(trained)
    if lora_report is not None:
        run.log({"event": "lora", **lora_report})
    if stale:
        run.log({"event": "cleaned_stale_checkpoint_writes", "count": len(stale)})
    if resume:
        run.log({"event": "resumed", "step": state.step})

    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    run.bar = tqdm(
        total=cfg.train.max_steps,
        initial=state.step,
        desc="pretrain",
        disable=not (show_progress and is_main),
    )
    try:
        while True:
            try:
                state = train(
                    trained,
                    train_data,
                    next_token_loss,
                    optimizer,
                    cfg.train,
                    state=state,
                    device=device,
                    autocast=autocast,
                    scaler=scaler,
                    on_step=run.on_step,
                    should_stop=lambda: stop["signal"] is not None,
                )
                break
            except NonFiniteTraining as exc:
                state = run.roll_back(state, exc)
        if stop["signal"] is not None:
            run.log({"event": "stopped_by_signal", "signal": int(stop["signal"]), "step": state.step})
        run.save(state)
        if is_main and cfg.lora is not None:  # the adapter alone, in PEFT's format, for the base
            from scratchlm.interop.peft import save_peft_adapter

            save_peft_adapter(model, out / "adapter", cfg.train.init)
    finally:
        run.bar.close()
        run.runlog.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if world > 1:
            torch.distributed.destroy_process_group()
    if is_main:
        write_report_safely(out, command)
    return state


class _Run:
    """The run directory's bookkeeping, called after every optimizer step."""

    def __init__(
        self, cfg, out, model, optimizer, train_data, val_data, tokenizer, tokens_per_byte, device, autocast
    ):
        self.cfg, self.out, self.model, self.optimizer = cfg, out, model, optimizer
        self.train_data, self.val_data, self.tokenizer = train_data, val_data, tokenizer
        self.tokens_per_byte, self.device, self.autocast = tokens_per_byte, device, autocast
        self.samples = (out / "samples.jsonl").open("a", encoding="utf-8")
        self.bar = None
        self.best_pending = False
        self.is_main, self.scaler, self.world = True, None, 1
        self.runlog: RunLog | None = None
        self.peak = 0.0
        self.flops_per_token = flops_per_token(cfg.model)

    def log(self, record: dict) -> None:
        self.runlog.log(record)

    def on_step(self, state: TrainState, result: StepResult) -> None:
        if not self.is_main:
            return
        t = self.cfg.train
        tokens_per_s = result.tokens / max(result.seconds, 1e-9)
        step_mfu = mfu(tokens_per_s, self.flops_per_token, self.peak * self.world)
        record = {
            "step": result.step,
            "loss": result.loss,
            "lr": result.lr,
            "grad_norm": result.grad_norm,
            "tokens": state.tokens,
            "tokens_per_s": round(tokens_per_s, 1),
            "mfu": round(step_mfu, 4),
        }
        if self.scaler is not None:
            record["loss_scale"] = self.scaler.get_scale()
        if result.skipped:
            record["skipped"] = "non-finite loss or gradient norm"
        if result.skipped or result.step % t.log_interval == 0 or result.step == t.max_steps:
            self.log(record)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(
                loss=f"{result.loss:.4f}", tok_s=f"{tokens_per_s:,.0f}", mfu=f"{step_mfu:.0%}"
            )
        is_last = result.step == t.max_steps
        if result.step % t.eval_interval == 0 or is_last:
            self.evaluate(state)
        if result.step % t.checkpoint_interval == 0 and not is_last:
            self.save(state)

    def evaluate(self, state: TrainState) -> None:
        batches = self.val_data.iter_sequential(self.cfg.train.batch_size)
        limited = (b for _, b in zip(range(self.cfg.train.eval_batches), batches))
        val_loss = evaluate(self.model, limited, next_token_loss, self.device, self.autocast)
        record = {"step": state.step, "val_loss": val_loss, "val_ppl": perplexity(val_loss)}
        if self.tokens_per_byte is not None:
            record["val_bpb"] = bits_per_byte(val_loss, self.tokens_per_byte)
        self.log(record)
        if val_loss < state.best_val:
            state.best_val = val_loss
            self.best_pending = True
        sample = generate_text(
            self.model,
            self.tokenizer,
            self.cfg.train.sample_prompt,
            max_new_tokens=self.cfg.train.sample_tokens,
        )
        self.model.train()
        self.samples.write(
            json.dumps({"step": state.step, "prompt": self.cfg.train.sample_prompt, "text": sample}) + "\n"
        )
        plot_run(self.out)
        self.samples.flush()

    def save(self, state: TrainState) -> Path | None:
        if not self.is_main:
            return None
        path = ckpt.save_checkpoint(
            self.out,
            self.model,
            self.optimizer,
            state,
            self.train_data.state_dict(),
            self.cfg.to_dict(),
            self.cfg.train.keep_last,
            self.scaler,
        )
        if self.best_pending:
            ckpt.mark_best(self.out, path, state.best_val)
            self.best_pending = False
        return path

    def roll_back(self, state: TrainState, exc: NonFiniteTraining) -> TrainState:
        latest = ckpt.latest_checkpoint(self.out)
        if latest is None:
            raise ScratchLMError(f"{exc}; no checkpoint to roll back to: lower train.lr") from None
        restored, data_state, _ = ckpt.load_checkpoint(latest, self.model, self.optimizer, self.scaler)
        self.train_data.load_state_dict(data_state)
        restored.lr_scale = state.lr_scale * 0.5
        self.log(
            {
                "event": "rolled_back",
                "to_step": restored.step,
                "lr_scale": restored.lr_scale,
                "reason": str(exc),
            }
        )
        if self.bar is not None:
            self.bar.n = restored.step
        return restored
