"""The run session: one shell around the one training loop, for pretraining and every fine-tune.

`run_session` owns the run directory (config.json, metrics.jsonl, checkpoints/), the progress bar, the
evaluation cadence, the best weights (a checkpoint named by best.json, so they survive a crash), exact
resume, SIGINT/SIGTERM, and the rollback after non-finite steps. A task is only its model, data, loss,
evaluation and what it makes of the result: the `Task` protocol. A new task (preference tuning: pairs of
answers, a DPO loss, a frozen reference model held by the task) plugs in as one more `Task`.

Knows nothing about reports: the caller writes them after `run_session` returns.
"""

from __future__ import annotations

import json
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from scratchlm.config import ModelConfig, RunConfig
from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json
from scratchlm.formats.checkpoint import best_checkpoint, latest_checkpoint, load_weights
from scratchlm.precision import autocast as autocast_factory
from scratchlm.precision import resolve_precision
from scratchlm.train import checkpoint as ckpt
from scratchlm.train.distributed import setup_processes
from scratchlm.train.loop import Batch, Batches, NonFiniteTraining, StepResult, TrainState, train
from scratchlm.train.optim import build_optimizer
from scratchlm.train.perf import keep_heap, mfu, peak_flops
from scratchlm.train.runlog import RunLog

# What `--resume` may change: how the rest of the run is run and logged, never what it learns from.
RESUMABLE = {
    "train": {
        "max_steps",
        "eval_interval",
        "eval_batches",
        "log_interval",
        "checkpoint_interval",
        "keep_last",
        "device",
        "compile",
        "peak_flops",
        "keep_heap",
        "loggers",
        "sample_prompt",
        "sample_tokens",
    },
    "judge": None,  # the whole section (None: any change)
    "generate": None,
}


class Task(Protocol):
    """What a session trains. Built before the run directory is touched (bad data fail early); `model`
    is on the CPU with its trainable parameters marked; `cfg` is the run's config with what the task
    resolved (e.g. the architecture of `train.init`)."""

    cfg: RunConfig
    model: torch.nn.Module
    batches: Batches
    max_steps: int
    steps_per_epoch: int | None  # None: the data have no epochs
    flops_per_token: float | None  # model FLOPs of a training token, for MFU (None: not reported)
    eval_at_start: bool  # evaluate the model before the first step (a fine-tune's base)
    restore_best: bool  # end with the best evaluation's weights (else the last)
    result_file: str | None  # written at the end; its presence means the run is finished

    def loss(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor: ...

    def start(self, session: Session) -> None:
        """Files of the run directory besides the session's (a fresh run and a resumed one alike)."""

    def evaluate(self, session: Session, step: int) -> tuple[dict, tuple[float, ...]]:
        """(the record to log, a key: larger is better) for the model now."""

    def plot(self, out: Path) -> None:
        """The run's curves as PNG files, from metrics.jsonl (after the last step)."""

    def finish(self, session: Session, state: TrainState) -> dict:
        """After the last step (best weights restored if asked): test, save, return the result."""


@dataclass
class Outcome:
    state: TrainState
    stopped: bool  # by a signal, before the end: `--resume` continues it
    result: dict = field(default_factory=dict)  # the task's result (also in `result_file`)
    max_steps: int | None = None  # the run's (train.max_minutes sizes it at the start)


@dataclass
class Session:
    """The live run, handed to a task's hooks."""

    cfg: RunConfig
    out: Path
    model: torch.nn.Module
    device: torch.device
    autocast: Callable
    log: Callable[[dict], None]
    is_main: bool = True


def run_session(
    cfg: RunConfig,
    make_task: Callable[[RunConfig, Path, bool], Task],
    out_dir: str | Path,
    resume: bool = False,
    show_progress: bool = True,
) -> Outcome:
    """Build the task, then train it in `out_dir` (or continue the run there with `resume`)."""
    out = Path(out_dir)
    saved = _check_run_dir(cfg, out, resume)
    rank, world, device = setup_processes(cfg.train.device)
    cfg = _chosen_precision(cfg, device, saved)
    is_main = rank == 0
    if cfg.train.keep_heap and device.type == "cpu":
        keep_heap()
    random.seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    task = make_task(cfg, out, resume)
    cfg = task.cfg
    if resume and task.result_file and (out / task.result_file).exists():
        raise ScratchLMError(f"{out}: the run is finished ({task.result_file} is written): nothing to resume")
    if saved is not None:
        _check_resumable(saved, cfg, out)
    if world > 1:
        if not hasattr(task.batches, "rank"):
            raise ScratchLMError(f"a {cfg.kind} run trains in one process: start it without torchrun")
        task.batches.rank, task.batches.world_size = rank, world
    model = task.model.to(device)
    optimizer = build_optimizer(model, cfg.train)
    precision = resolve_precision(cfg.train.precision, device)
    # fp16 needs loss scaling (its gradients underflow); bf16 and fp32 do not.
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    state = TrainState()
    if resume:
        latest = latest_checkpoint(out)
        if latest is None:
            raise ScratchLMError(
                f"{out}: no complete checkpoint to resume from: start again in another --out"
            )
        state, data_state, _ = ckpt.load_checkpoint(latest, model, optimizer, scaler)
        task.batches.load_state_dict(data_state)
    out.mkdir(parents=True, exist_ok=True)
    stale = ckpt.clean_stale(out) if is_main else []
    if is_main:
        write_json(out / "config.json", cfg.to_dict())
    runlog = RunLog(out, cfg.train.loggers, cfg.to_dict(), enabled=is_main)
    session = Session(cfg, out, model, device, autocast_factory(precision, device), runlog.log, is_main)
    steps = _Steps(session, task, optimizer, scaler, world, show_progress, state)
    task.start(session)
    if stale:
        runlog.log({"event": "cleaned_stale_checkpoint_writes", "count": len(stale)})
    if resume:
        runlog.log({"event": "resumed", "step": state.step})
    trained: torch.nn.Module = model
    if world > 1:  # gradients averaged across processes; rank 0 logs, evaluates and checkpoints
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.train.compile:  # the training step only: evaluation and sampling run the eager `model`
        trained = torch.compile(trained)
    train_cfg = replace(cfg.train, max_steps=task.max_steps)
    stop: dict[str, Any] = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if state.step == 0 and task.eval_at_start:
            steps.evaluate(state)
        while True:
            try:
                state = train(
                    trained,
                    task.batches,
                    task.loss,
                    optimizer,
                    train_cfg,
                    state=state,
                    device=device,
                    autocast=session.autocast,
                    scaler=scaler,
                    on_step=steps.on_step,
                    should_stop=lambda: stop["signal"] is not None,
                )
                break
            except NonFiniteTraining as exc:
                state = steps.roll_back(state, exc)
        if steps.saved_step != state.step:
            steps.save(state)
        if stop["signal"] is not None and state.step < task.max_steps:
            runlog.log({"event": "stopped_by_signal", "signal": int(stop["signal"]), "step": state.step})
            return Outcome(state, stopped=True, max_steps=task.max_steps)
        if is_main:
            task.plot(out)
        if task.restore_best and is_main:
            best = best_checkpoint(out)
            if best is not None:
                load_weights(best, model)
                runlog.log({"event": "best_model", "checkpoint": best.name, "step": state.best_step})
        model.eval()
        result = task.finish(session, state) if is_main else {}
        if is_main and task.result_file:
            write_json(out / task.result_file, result)
        runlog.log({"event": "finished", "step": state.step})
        return Outcome(state, stopped=False, result=result, max_steps=task.max_steps)
    finally:
        steps.bar.close()
        runlog.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if world > 1:
            torch.distributed.destroy_process_group()


class _Steps:
    """Per-step bookkeeping: the log line, evaluations, checkpoints, the best weights, rollbacks."""

    def __init__(self, session: Session, task: Task, optimizer, scaler, world: int, show_progress, state):
        self.session, self.task, self.optimizer, self.scaler = session, task, optimizer, scaler
        self.cfg = session.cfg.train
        self.world = world
        self.saved_step = state.step if state.step else -1
        self.eval_interval = self.cfg.eval_interval or task.steps_per_epoch or task.max_steps
        self.peak = 0.0
        if task.flops_per_token and session.is_main:
            precision = resolve_precision(self.cfg.precision, session.device)
            peak, source = (
                (self.cfg.peak_flops, "train.peak_flops")
                if self.cfg.peak_flops > 0
                else peak_flops(session.device, precision)
            )
            self.peak = peak
            session.log({"event": "peak_flops", "flops": peak, "source": source, "precision": precision})
        self.bar = tqdm(
            total=task.max_steps,
            initial=state.step,
            desc=session.cfg.kind,
            disable=not (show_progress and session.is_main),
        )
        self.postfix: dict[str, str] = {}

    def on_step(self, state: TrainState, result: StepResult) -> None:
        if not self.session.is_main:
            return
        last = self.task.max_steps
        tokens_per_s = result.tokens / max(result.seconds, 1e-9)
        record: dict[str, Any] = {"step": result.step}
        if self.task.steps_per_epoch:
            record["epoch"] = round(result.step / self.task.steps_per_epoch, 3)
        record |= {
            "loss": result.loss,
            "lr": result.lr,
            "grad_norm": result.grad_norm,
            "tokens": state.tokens,
            "tokens_per_s": round(tokens_per_s, 1),
        }
        self.postfix |= {"loss": f"{result.loss:.4f}", "tok_s": f"{tokens_per_s:,.0f}"}
        if self.peak:
            step_mfu = mfu(tokens_per_s, self.task.flops_per_token or 0.0, self.peak * self.world)
            record["mfu"] = round(step_mfu, 4)
            self.postfix["mfu"] = f"{step_mfu:.0%}"
        if self.scaler is not None:
            record["loss_scale"] = self.scaler.get_scale()
        if result.skipped:
            record["skipped"] = "non-finite loss or gradient norm"
        if result.skipped or result.step % self.cfg.log_interval == 0 or result.step == last:
            self.session.log(record)
        self.bar.update(1)
        self.bar.set_postfix(self.postfix)
        if result.step % self.eval_interval == 0 or result.step == last:
            self.evaluate(state)
        interval = self.cfg.checkpoint_interval
        if interval and result.step % interval == 0 and self.saved_step != result.step != last:
            self.save(state)

    def evaluate(self, state: TrainState) -> None:
        """Evaluate; a new best is checkpointed at once, so the best weights are on disk."""
        if not self.session.is_main:
            return
        record, key = self.task.evaluate(self.session, state.step)
        self.session.model.train()
        self.session.log({"step": state.step, **record})
        first = next(iter(record.items()), None)
        if first is not None and isinstance(first[1], float):
            self.postfix[first[0]] = f"{first[1]:.4f}"
        if state.best_key is None or list(key) > state.best_key:
            state.best_key, state.best_step = list(key), state.step
            self.save(state, best=True)

    def save(self, state: TrainState, best: bool = False) -> None:
        if not self.session.is_main:
            return
        path = ckpt.save_checkpoint(
            self.session.out,
            self.session.model,
            self.optimizer,
            state,
            self.task.batches.state_dict(),
            self.session.cfg.to_dict(),
            self.cfg.keep_last,
            self.scaler,
        )
        if best:
            ckpt.mark_best(self.session.out, path, state.best_key)
        self.saved_step = state.step

    def roll_back(self, state: TrainState, exc: NonFiniteTraining) -> TrainState:
        latest = latest_checkpoint(self.session.out)
        if latest is None:
            raise ScratchLMError(f"{exc}; no checkpoint to roll back to: lower train.lr") from None
        restored, data_state, _ = ckpt.load_checkpoint(
            latest, self.session.model, self.optimizer, self.scaler
        )
        self.task.batches.load_state_dict(data_state)
        restored.lr_scale = state.lr_scale * 0.5
        self.session.log(
            {
                "event": "rolled_back",
                "to_step": restored.step,
                "lr_scale": restored.lr_scale,
                "reason": str(exc),
            }
        )
        self.bar.n = restored.step
        return restored


def load_init(cfg: RunConfig):
    """(model, tokenizer or None, cfg with the model's architecture) for a run from `train.init`: the
    weights it names (a model or run directory, or a Hub name), rebuilt with `model.dropout` (dropout is
    fixed when the modules are built)."""
    from scratchlm.formats.model_files import load_model
    from scratchlm.model.gpt import GPT

    if not cfg.train.init:
        raise ScratchLMError(f"a {cfg.kind} run starts from a model: set train.init (--model)")
    loaded, tokenizer = load_model(cfg.train.init)
    unset = ModelConfig()
    for name, value in cfg.model.to_dict().items():  # a setting given that contradicts the weights
        if name != "dropout" and value != getattr(unset, name) and value != getattr(loaded.cfg, name):
            raise ScratchLMError(
                f"model.{name} is {value!r}, but {cfg.train.init} has {getattr(loaded.cfg, name)!r}: a run "
                "from train.init takes its architecture from those weights (only model.dropout can be set)"
            )
    model_cfg = replace(loaded.cfg, dropout=cfg.model.dropout)
    model = loaded
    if model_cfg != loaded.cfg:
        model = GPT(model_cfg, init=False)
        model.load_state_dict(loaded.state_dict())
    if tokenizer is not None and tokenizer.vocab_size > model_cfg.vocab_size:
        raise ScratchLMError(
            f"{cfg.train.init}: the tokenizer's {tokenizer.vocab_size:,} tokens do not fit the model's "
            f"vocabulary of {model_cfg.vocab_size:,}"
        )
    return model, tokenizer, replace(cfg, model=model_cfg)


def _chosen_precision(cfg: RunConfig, device: torch.device, saved: dict | None) -> RunConfig:
    """The run with `train.precision: fastest` made the precision it measured (or, resumed, the one the run
    chose when it started, so that it goes on as it began): config.json records what the run trains in."""
    if cfg.train.precision != "fastest":
        return cfg
    before = (saved or {}).get("train", {}).get("precision")
    precision = before if before in ("fp32", "bf16") else resolve_precision("fastest", device)
    return replace(cfg, train=replace(cfg.train, precision=precision))


def _check_run_dir(cfg: RunConfig, out: Path, resume: bool) -> dict | None:
    """The saved config of the run in `out` when resuming (None for a fresh run), or a clear error."""
    holds = (out / "config.json").is_file() or (out / "checkpoints").exists()
    if not resume:
        if holds or (out / "metrics.jsonl").exists():
            raise ScratchLMError(f"{out} already holds a run: pass --resume to continue it, or another --out")
        return None
    if not holds:
        raise ScratchLMError(f"{out}: no run to resume (no config.json or checkpoints)")
    saved = read_json(out / "config.json") if (out / "config.json").is_file() else {}
    if saved.get("kind", "pretrain") != cfg.kind:
        raise ScratchLMError(f"{out} holds a {saved.get('kind', 'pretrain')} run, not a {cfg.kind} run")
    return saved


def _check_resumable(saved: dict, cfg: RunConfig, out: Path) -> None:
    """Refuse to resume with settings that would make it another run (naming the first that differs)."""
    now = json.loads(json.dumps(cfg.to_dict()))  # tuples as lists, as they were saved
    for section, values in now.items():
        allowed = RESUMABLE.get(section, set())
        if allowed is None or section not in saved:
            continue
        before = saved[section]
        if not isinstance(values, dict) or not isinstance(before, dict):
            if values != before:
                raise ScratchLMError(f"{out}: {section} differs from the saved run's: cannot resume it")
            continue
        for key, value in values.items():
            if key not in allowed and before.get(key, value) != value:
                raise ScratchLMError(
                    f"{out}: {section}.{key} is {value!r}, the saved run's is {before.get(key)!r}: "
                    "resume with the run's own settings (or start another --out)"
                )
    if (out / "checkpoints").exists() and latest_checkpoint(out) is None:
        raise ScratchLMError(f"{out}: no complete checkpoint to resume from: start again in another --out")
