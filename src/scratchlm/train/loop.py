"""The one training loop. Pretraining and every fine-tune differ only in their batches and `loss_fn`.

Knows nothing about files, logging or processes: the caller's `on_step` logs, evaluates and checkpoints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import torch

from scratchlm.config import TrainConfig
from scratchlm.errors import ScratchLMError
from scratchlm.train.distributed import mean_loss_and_tokens
from scratchlm.train.optim import MuonAdamW, set_schedule
from scratchlm.train.schedule import lr_at

# (inputs, targets) for language modelling; fine-tunes add tensors (a classifier: labels, last positions).
# The loop moves every tensor to the device and counts the tokens of the first.
Batch = tuple[torch.Tensor, ...]


class Batches(Protocol):
    def get_batch(self, batch_size: int) -> Batch: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class TrainState:
    """What a checkpoint must carry besides weights, optimizer and random states."""

    step: int = 0  # optimizer updates done (skipped non-finite steps count too)
    tokens: int = 0
    bad_steps: int = 0  # non-finite steps in a row
    lr_scale: float = 1.0  # halved at each rollback after non-finite steps
    best_key: list[float] | None = None  # the best evaluation's key (larger is better), e.g. [-val_loss]
    best_step: int = 0
    seconds: float = 0.0  # spent in training steps, over every session of the run


@dataclass(frozen=True)
class StepResult:
    step: int
    loss: float
    lr: float
    grad_norm: float
    tokens: int
    seconds: float
    skipped: bool


class NonFiniteTraining(ScratchLMError):
    """Several steps in a row had a non-finite loss or gradient norm."""


def train(
    model: torch.nn.Module,
    batches: Batches,
    loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor],
    optimizer: torch.optim.Optimizer | MuonAdamW,
    cfg: TrainConfig,
    *,
    state: TrainState | None = None,
    device: torch.device | str = "cpu",
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    scaler: torch.amp.GradScaler | None = None,
    on_step: Callable[[TrainState, StepResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainState:
    """Run optimizer steps from `state.step` to `cfg.max_steps` (or until `should_stop()`).

    Each step: lr from the schedule, `grad_accum_steps` micro-batches of `batch_size`, gradient clipping,
    then the update, unless the loss or the gradient norm is not finite: that step is skipped and, after
    `max_bad_steps` in a row, `NonFiniteTraining` is raised for the caller to roll back.

    With a `scaler` (fp16 training), the loss is scaled before backward and the gradients unscaled before
    clipping; an overflowing gradient is the scaler's business (it skips the update and lowers the scale),
    so only a non-finite *loss* counts as a bad step then.
    """
    state = state or TrainState()
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    while state.step < cfg.max_steps and not (should_stop and should_stop()):
        start = time.perf_counter()
        lr = lr_at(state.step, cfg) * state.lr_scale
        set_schedule(optimizer, lr, state.step, cfg)
        loss_sum = 0.0
        tokens = 0
        for micro in range(cfg.grad_accum_steps):
            batch = tuple(t.to(device) for t in batches.get_batch(cfg.batch_size))
            # Under DDP, gradients are averaged across processes once per step, on the last micro-batch.
            is_last = micro == cfg.grad_accum_steps - 1
            sync = nullcontext() if is_last or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with autocast():
                    loss = loss_fn(model, batch)
                scaled = loss / cfg.grad_accum_steps
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
            loss_sum += loss.item()
            tokens += batch[0].numel()
        loss_sum, tokens = mean_loss_and_tokens(loss_sum, tokens)
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        if scaler is not None:
            scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # FSDP2: a DTensor
        loss_value = loss_sum / cfg.grad_accum_steps
        bad = not math.isfinite(loss_value) or (scaler is None and not math.isfinite(grad_norm))
        skipped = bad or not math.isfinite(grad_norm)
        if bad:
            state.bad_steps += 1
        else:
            state.bad_steps = 0
        if scaler is not None:
            scaler.step(optimizer)  # skips the update itself when a gradient overflowed
            scaler.update()
        elif not skipped:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.tokens += tokens
        seconds = time.perf_counter() - start
        state.seconds += seconds
        result = StepResult(state.step, loss_value, lr, grad_norm, tokens, seconds, skipped)
        if on_step is not None:
            on_step(state, result)
        if state.bad_steps >= cfg.max_bad_steps:
            raise NonFiniteTraining(
                f"{state.bad_steps} steps in a row had a non-finite loss or gradient norm "
                f"(the last at step {state.step})"
            )
    return state


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches,
    loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor],
    device: torch.device | str = "cpu",
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> float:
    """Mean loss over the given batches (an iterable of (inputs, targets)), model in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = tuple(t.to(device) for t in batch)
        with autocast():
            loss = loss_fn(model, batch)
        total += loss.item() * batch[0].shape[0]
        count += batch[0].shape[0]
    model.train(was_training)
    if count == 0:
        raise ScratchLMError("no validation batches: the validation text is shorter than one window")
    return total / count
