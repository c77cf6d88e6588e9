"""Continuous batching: many requests decode together on one KV cache, joining and leaving at any step.

One thread owns the model. Each step it admits waiting requests into free rows ("slots") of a shared
cache, then runs one forward pass for every active row at once and hands each row its next token. A
request never waits for another to finish, and a finished or abandoned one frees its slot at once.

The cache layout is *right-aligned*: all rows write their next token at the same cache position `pos`,
and a row's text occupies the positions `start .. pos-1` of its row (earlier positions hold stale keys of
former requests, hidden by the padding mask). Each row gets its own position ids (`pos - start`), so a
request sees exactly the positions it would see alone. A newcomer whose prompt is longer than `pos` shifts
the cache right; when `pos` reaches the end, the cache shifts left by the smallest `start`. The model is
unchanged: this only uses `GPT.forward`'s padding mask, position ids and a cache object.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from scratchlm.config import GenerateConfig
from scratchlm.errors import ScratchLMError
from scratchlm.generate.sampling import apply_repetition_penalty, sample_next
from scratchlm.generate.text_stream import TextStream
from scratchlm.model.gpt import GPT
from scratchlm.model.kv_cache import KVCache

_ids = itertools.count()


class QueueFull(ScratchLMError):
    """More requests are waiting than the server accepts (answer 503 and let the client retry)."""


@dataclass
class TokenEvent:
    """One generated token: its id, the text it made safe to show (may be empty), and log-probabilities
    under the model (before temperature and filters): the token's own and the `top` alternatives."""

    token: int
    text: str
    logprob: float | None = None
    top: list[tuple[int, float]] | None = None


@dataclass
class Done:
    finish_reason: str  # "stop" (end of text or a stop string), "length", "cancelled", "error"
    text: str = ""  # what was held back, shown now
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class Request:
    """A generation job. `emit` receives TokenEvent then Done, from the engine thread."""

    prompt: list[int]
    config: GenerateConfig
    emit: Callable[[TokenEvent | Done], None]
    logprobs: int | None = None  # alternatives per token (0: only the chosen token's log-probability)
    id: int = field(default_factory=lambda: next(_ids))
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()


@dataclass
class _Row:
    request: Request
    start: int
    stream: TextStream
    generator: torch.Generator | None
    seen: list[int]
    generated: int = 0
    next_token: int = -1


class Engine:
    """Serve `model` to many callers: `submit` a Request, receive its events through `request.emit`.

    max_batch: rows decoded together. max_queue: requests waiting for a row before `submit` raises
    QueueFull. The engine thread starts with `start()` and ends with `stop()`.
    """

    def __init__(
        self, model: GPT, tokenizer, max_batch: int = 8, max_queue: int = 64, eos_id: int | None = None
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.eos_id = eos_id if eos_id is not None else getattr(tokenizer, "eot_id", None)
        self.max_batch, self.max_queue = max_batch, max_queue
        self.context = model.cfg.context_length
        param = next(model.parameters())
        self.device, dtype = param.device, param.dtype
        self.cache = KVCache.for_model(model.cfg, max_batch, dtype=dtype, device=self.device)  # rows = slots
        self.pos = 0
        self.rows: list[_Row | None] = [None] * max_batch
        self.waiting: deque[Request] = deque()
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()  # other work for the model thread (scoring)
        self.lock = threading.Condition()
        self.running = False
        self.thread: threading.Thread | None = None
        self.stats = {"steps": 0, "tokens": 0, "max_active": 0}

    # ---- the caller's side -----------------------------------------------------------------------------
    def start(self) -> Engine:
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="scratchlm-engine", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        with self.lock:
            self.running = False
            self.lock.notify_all()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def submit(self, request: Request) -> None:
        if not request.prompt:
            raise ScratchLMError("the prompt is empty: it needs at least one token")
        if len(request.prompt) >= self.context:
            raise ScratchLMError(
                f"the prompt has {len(request.prompt)} tokens; this model's context is {self.context} "
                f"(prompt + at least one new token must fit)"
            )
        with self.lock:
            if len(self.waiting) >= self.max_queue:
                raise QueueFull(f"{len(self.waiting)} requests are waiting: try again shortly")
            self.waiting.append(request)
            self.lock.notify_all()

    def run_on_model(self, fn: Callable[[], object]) -> object:
        """Run `fn` on the engine thread between steps (the model is not thread-safe); return its result."""
        done: queue.SimpleQueue = queue.SimpleQueue()
        self.jobs.put((fn, done))
        with self.lock:
            self.lock.notify_all()
        ok, value = done.get()
        if not ok:
            raise value
        return value

    @property
    def active(self) -> int:
        return sum(r is not None for r in self.rows)

    @property
    def queued(self) -> int:
        return len(self.waiting)

    # ---- the engine thread -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self.lock:
                while self.running and not self.waiting and self.active == 0 and self.jobs.empty():
                    self.lock.wait(timeout=0.5)
                if not self.running:
                    break
            self._run_jobs()
            self._admit()
            if self.active:
                try:
                    self._step()
                except Exception as exc:  # a bug must not hang every client: end their requests
                    for slot, row in enumerate(self.rows):
                        if row is not None:
                            self._finish(slot, "error", error=f"{type(exc).__name__}: {exc}")
                    self.pos = 0
        for slot, row in enumerate(self.rows):
            if row is not None:
                self._finish(slot, "cancelled")
        while self.waiting:
            self.waiting.popleft().emit(Done("cancelled"))

    def _run_jobs(self) -> None:
        while not self.jobs.empty():
            fn, done = self.jobs.get()
            try:
                done.put((True, fn()))
            except Exception as exc:  # handed back to the caller
                done.put((False, exc))

    def _admit(self) -> None:
        while True:
            with self.lock:
                if not self.waiting or None not in self.rows:
                    return
                request = self.waiting.popleft()
            if request.cancelled.is_set():
                request.emit(Done("cancelled", prompt_tokens=len(request.prompt)))
                continue
            slot = self.rows.index(None)
            try:
                self._prefill(slot, request)
            except Exception as exc:  # this request fails; the engine and the other rows go on
                if self.rows[slot] is not None:
                    self.rows[slot] = None
                request.emit(
                    Done("error", prompt_tokens=len(request.prompt), error=f"{type(exc).__name__}: {exc}")
                )

    @torch.inference_mode()
    def _prefill(self, slot: int, request: Request) -> None:
        L = len(request.prompt)
        if self.active == 0:
            self.pos = 0
        if self.pos < L:  # not enough room left of `pos`: shift every row right
            self._shift(L - self.pos)
        start = self.pos - L
        ids = torch.tensor([request.prompt], dtype=torch.long, device=self.device)
        mask = torch.zeros((1, self.pos), dtype=torch.bool, device=self.device)
        mask[0, start:] = True
        positions = torch.arange(L, device=self.device)[None]
        cache = self.cache.rows(slice(slot, slot + 1), start)
        logits = self.model(ids, cache, padding_mask=mask, position_ids=positions, last_only=True)[:, -1]
        config = request.config
        generator = None
        if config.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(config.seed)
        row = _Row(request, start, TextStream(self.tokenizer, config.stop), generator, list(request.prompt))
        self.rows[slot] = row
        self.stats["max_active"] = max(self.stats["max_active"], self.active)
        self._take(slot, logits[0])

    @torch.inference_mode()
    def _step(self) -> None:
        if self.pos >= self.context:
            self._make_room()
            if not self.active:
                return
        used = max(slot for slot, row in enumerate(self.rows) if row is not None) + 1
        tokens = torch.zeros((used, 1), dtype=torch.long, device=self.device)
        positions = torch.zeros((used, 1), dtype=torch.long, device=self.device)
        mask = torch.zeros((used, self.pos + 1), dtype=torch.bool, device=self.device)
        for slot in range(used):
            row = self.rows[slot]
            if row is not None:
                tokens[slot, 0] = row.next_token
                positions[slot, 0] = self.pos - row.start
                mask[slot, row.start :] = True
        cache = self.cache.rows(slice(0, used), self.pos)
        logits = self.model(tokens, cache, padding_mask=mask, position_ids=positions, last_only=True)[:, -1]
        self.pos += 1
        self.stats["steps"] += 1
        for slot in range(used):
            if self.rows[slot] is not None:
                self._take(slot, logits[slot])

    def _take(self, slot: int, logits: torch.Tensor) -> None:
        """Sample this row's next token from its logits (V,), emit it, and finish the row if it is done."""
        row = self.rows[slot]
        request, config = row.request, row.request.config
        if request.cancelled.is_set():
            self._finish(slot, "cancelled")
            return
        if config.max_new_tokens == 0:
            self._finish(slot, "length")
            return
        scores = logits[None].float()
        if config.repetition_penalty != 1.0:
            seen = torch.tensor([row.seen], device=scores.device)
            scores = apply_repetition_penalty(scores, seen, config.repetition_penalty)
        token = int(sample_next(scores, config.temperature, config.top_k, config.top_p, row.generator)[0])
        row.generated += 1
        self.stats["tokens"] += 1
        if self.eos_id is not None and config.stop_at_eos and token == self.eos_id:
            self._finish(slot, "stop")
            return
        event = TokenEvent(token, row.stream.add(token))
        if request.logprobs is not None:
            logp = torch.log_softmax(logits.float(), dim=-1)
            event.logprob = float(logp[token])
            if request.logprobs > 0:
                top = torch.topk(logp, min(request.logprobs, logp.shape[-1]))
                event.top = list(zip(top.indices.tolist(), top.values.tolist()))
        request.emit(event)
        row.seen.append(token)
        row.next_token = token
        if row.stream.stopped:
            self._finish(slot, "stop")
        elif row.generated >= config.max_new_tokens:
            self._finish(slot, "length")

    def _finish(self, slot: int, reason: str, error: str | None = None) -> None:
        row = self.rows[slot]
        self.rows[slot] = None
        tail = row.stream.flush() if reason in ("length", "stop") else ""
        row.request.emit(Done(reason, tail, len(row.request.prompt), row.generated, error))

    def _shift(self, d: int) -> None:
        """Move every row's text d positions right (room for a long newcomer)."""
        if self.pos:
            self.cache.k[:, :, :, d : d + self.pos] = self.cache.k[:, :, :, : self.pos].clone()
            self.cache.v[:, :, :, d : d + self.pos] = self.cache.v[:, :, :, : self.pos].clone()
        for row in self.rows:
            if row is not None:
                row.start += d
        self.pos += d

    def _make_room(self) -> None:
        """`pos` is at the end of the cache: shift left by the smallest start; a row that fills the whole
        context has reached the model's limit and ends with "length"."""
        for slot, row in enumerate(self.rows):
            if row is not None and row.start == 0:
                self._finish(slot, "length")
        starts = [row.start for row in self.rows if row is not None]
        if not starts:
            self.pos = 0
            return
        d = min(starts)
        self.cache.k[:, :, :, : self.pos - d] = self.cache.k[:, :, :, d : self.pos].clone()
        self.cache.v[:, :, :, : self.pos - d] = self.cache.v[:, :, :, d : self.pos].clone()
        for row in self.rows:
            if row is not None:
                row.start -= d
        self.pos -= d


@torch.inference_mode()
def prompt_logprobs(model: GPT, ids: Sequence[int], top: int = 0) -> list[tuple[float | None, list]]:
    """For each prompt token, its log-probability given the tokens before it (None for the first) and the
    `top` most likely alternatives there: what `echo` + `logprobs` return (lm-evaluation-harness scores
    continuations this way)."""
    device = next(model.parameters()).device
    x = torch.tensor([list(ids)], dtype=torch.long, device=device)
    logp = torch.log_softmax(model(x)[0].float(), dim=-1)  # (T, V): row t predicts token t + 1
    out: list[tuple[float | None, list]] = [(None, [])]
    for t in range(1, len(ids)):
        alternatives = []
        if top > 0:
            best = torch.topk(logp[t - 1], min(top, logp.shape[-1]))
            alternatives = list(zip(best.indices.tolist(), best.values.tolist()))
        out.append((float(logp[t - 1, ids[t]]), alternatives))
    return out


def wait_for(result: queue.SimpleQueue, timeout: float) -> TokenEvent | Done:
    """The next event from a queue fed by `emit`, or TimeoutError (the engine is stuck or overloaded)."""
    try:
        return result.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"no token within {timeout:g} s") from None
