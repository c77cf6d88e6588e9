"""OpenAI's API as pure translation, with no HTTP and no threads: a request body becomes engine jobs (prompt
ids and a GenerateConfig per choice), and the engine's events become OpenAI's choices, stream chunks and
log-probabilities. `serve/app.py` only moves these between the network and the engine, so everything a
client can see is tested here by calling functions.

Errors are `APIError`s (status, message, OpenAI's `type`, `param`, `code`); the app sends them as OpenAI's
error objects.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi.responses import JSONResponse

from scratchlm.config import GenerateConfig
from scratchlm.data.templates import encode_prompt
from scratchlm.errors import ScratchLMError
from scratchlm.serve.conversation import render_conversation
from scratchlm.serve.engine import Done, TokenEvent
from scratchlm.serve.schemas import ChatRequest, CompletionRequest


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20  # 1 MiB of JSON
    max_tokens: int | None = None  # per choice; None: the model's context
    max_n: int = 8  # choices per request (times prompts in a batch)
    max_prompts: int = 32  # prompts in one /v1/completions batch
    token_timeout_s: float = 120.0  # the longest wait for the next token (queueing included)


class APIError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param=None, code=None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        headers = {"Retry-After": "1"} if self.status in (429, 503) else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


@dataclass(frozen=True)
class Job:
    """One choice to generate: its index in the response, its prompt's ids and its settings."""

    index: int
    prompt: list[int]
    config: GenerateConfig


@dataclass
class Plan:
    """What a request asks the engine for: the distinct prompts, and one job per choice."""

    prompts: list[list[int]]
    jobs: list[Job]
    kind: str  # "text_completion" or "chat.completion"
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        prefix = "cmpl" if self.kind == "text_completion" else "chatcmpl"
        self.id = self.id or f"{prefix}-{uuid.uuid4().hex}"

    @property
    def prompt_tokens(self) -> int:
        return sum(len(p) for p in self.prompts)

    def usage(self, completion_tokens: int) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        }


@dataclass
class Finished:
    """One job's whole result: the text, its token events, and how it ended."""

    text: str
    events: list[TokenEvent]
    done: Done


# ---- requests to jobs ------------------------------------------------------------------------------------


def check_model(name: str | None, served: str) -> None:
    if name and name != served:
        raise APIError(
            404,
            f"model {name!r} is not served here (this server has {served!r})",
            "not_found_error",
            "model",
            "model_not_found",
        )


def completion_plan(body: CompletionRequest, tokenizer, vocab: int, context: int, limits: Limits) -> Plan:
    """POST /v1/completions: one job per prompt × n (choice i·n + j is prompt i's j-th)."""
    prompts = completion_prompts(body, tokenizer, vocab, limits)
    n = body.n
    if n > limits.max_n or n * len(prompts) > limits.max_prompts:
        raise APIError(
            400, f"n must be at most {limits.max_n} and n × prompts at most {limits.max_prompts}", param="n"
        )
    if body.max_tokens == 0:  # scoring only: nothing to generate
        return Plan(prompts, [], "text_completion")
    config = generate_config(body, [len(p) for p in prompts], body.max_tokens, context, limits)
    jobs = [Job(i * n + j, p, seeded(config, body.seed, j)) for i, p in enumerate(prompts) for j in range(n)]
    return Plan(prompts, jobs, "text_completion")


def completion_prompts(body: CompletionRequest, tokenizer, vocab: int, limits: Limits) -> list[list[int]]:
    """The prompts of a completion request as ids: text (special-token strings stay text) or token ids."""
    prompt = body.prompt
    if isinstance(prompt, str) or (prompt and all(isinstance(x, int) for x in prompt)):
        batch: list = [prompt]
    else:
        batch = list(prompt)
    if not batch or len(batch) > limits.max_prompts:
        raise APIError(400, f"prompt: give 1 to {limits.max_prompts} prompts", param="prompt")
    out = []
    for item in batch:
        if isinstance(item, str):
            ids = tokenizer.encode_ordinary(item)
        else:
            ids = list(item)
            bad = [i for i in ids if not 0 <= i < vocab]
            if bad:
                raise APIError(
                    400, f"token id {bad[0]} is out of range (vocabulary: {vocab})", param="prompt"
                )
        if not ids:
            raise APIError(400, "the prompt is empty: it needs at least one token", param="prompt")
        out.append(ids)
    return out


def chat_plan(body: ChatRequest, tokenizer, template, context: int, limits: Limits) -> Plan:
    """POST /v1/chat/completions: the conversation rendered as `scratchlm chat` renders it, n jobs."""
    if body.n > limits.max_n:
        raise APIError(400, f"n must be at most {limits.max_n}", param="n")
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    try:
        text, stops = render_conversation(messages, template)
    except ScratchLMError as exc:
        raise APIError(400, str(exc), param="messages") from None
    prompt = encode_prompt(tokenizer, text, template)
    max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    config = generate_config(body, [len(prompt)], max_tokens, context, limits, extra_stops=stops)
    return Plan(
        [prompt], [Job(j, prompt, seeded(config, body.seed, j)) for j in range(body.n)], "chat.completion"
    )


def generate_config(
    body, prompt_lengths: Sequence[int], max_tokens: int | None, context: int, limits: Limits, extra_stops=()
) -> GenerateConfig:
    """The request's sampling settings, its token budget checked against the context and the server's cap
    (no `max_tokens`: as many as fit, up to the cap)."""
    longest = max(prompt_lengths)
    if longest >= context:
        raise APIError(
            400,
            f"this model's maximum context length is {context} tokens; the prompt has {longest}",
            param="messages" if isinstance(body, ChatRequest) else "prompt",
            code="context_length_exceeded",
        )
    room = context - longest
    if max_tokens is None:
        max_tokens = min(room, limits.max_tokens or room)
    elif max_tokens > room:
        raise APIError(
            400,
            f"max_tokens {max_tokens} + the prompt's {longest} tokens exceed this model's "
            f"context of {context}",
            param="max_tokens",
            code="context_length_exceeded",
        )
    elif limits.max_tokens is not None and max_tokens > limits.max_tokens:
        raise APIError(400, f"max_tokens must be at most {limits.max_tokens}", param="max_tokens")
    stops = tuple(dict.fromkeys((*body.stops(), *extra_stops)))
    if len(body.stops()) > 4 or any(len(s) > 200 for s in stops):
        raise APIError(400, "stop: at most 4 strings of at most 200 characters", param="stop")
    return GenerateConfig(
        max_new_tokens=max_tokens,
        temperature=body.temperature,
        top_k=body.top_k,
        top_p=body.top_p if body.top_p < 1.0 else None,
        repetition_penalty=body.repetition_penalty,
        seed=body.seed,
        stop=stops,
        stop_at_eos=not body.ignore_eos,
    )


def seeded(config: GenerateConfig, seed: int | None, j: int) -> GenerateConfig:
    """Choice j of n draws with seed + j, so n choices differ and each is reproducible."""
    return config if seed is None or j == 0 else config.replace(seed=seed + j)


def chat_top_logprobs(body: ChatRequest) -> int | None:
    """How many alternatives a chat request wants per token (None: no log-probabilities at all)."""
    return (body.top_logprobs or 0) if body.logprobs else None


# ---- whole responses -------------------------------------------------------------------------------------


def completion_response(
    body: CompletionRequest, plan: Plan, results: Sequence[Finished], tokenizer, model: str, scores=None
) -> dict:
    """The text_completion object. `scores[i]`: job i's prompt scored (`engine.prompt_logprobs`), needed
    when `echo` and `logprobs` are both asked for."""
    choices = []
    for i, (job, result) in enumerate(zip(plan.jobs, results)):
        echo = tokenizer.decode(job.prompt) if body.echo else ""
        logprobs = None
        if body.logprobs is not None:
            logprobs = completion_logprobs(tokenizer, result.events, len(echo))
            if body.echo:
                logprobs = merge_logprobs(prompt_logprobs(tokenizer, job.prompt, scores[i]), logprobs)
        choices.append(
            {"index": job.index, "text": echo + result.text, "logprobs": logprobs,
             "finish_reason": result.done.finish_reason}
        )  # fmt: skip
    completion = sum(len(r.events) for r in results)
    return _object(plan, model, choices, plan.usage(completion))


def score_only_response(body: CompletionRequest, plan: Plan, tokenizer, model: str, scores=None) -> dict:
    """`max_tokens: 0`: nothing is generated; with `echo` the prompt comes back, scored when `logprobs` is
    set (`scores[i]` for prompt i)."""
    choices = []
    for i, prompt in enumerate(plan.prompts):
        logprobs = None
        if body.logprobs is not None and body.echo:
            logprobs = prompt_logprobs(tokenizer, prompt, scores[i])
        text = tokenizer.decode(prompt) if body.echo else ""
        choices += [
            {"index": i * body.n + j, "text": text, "logprobs": logprobs, "finish_reason": "length"}
            for j in range(body.n)
        ]
    return _object(plan, model, choices, plan.usage(0))


def chat_response(body: ChatRequest, plan: Plan, results: Sequence[Finished], tokenizer, model: str) -> dict:
    """The chat.completion object."""
    top = chat_top_logprobs(body)
    choices = [
        {
            "index": job.index,
            "message": {"role": "assistant", "content": result.text},
            "logprobs": chat_logprobs(tokenizer, result.events) if top is not None else None,
            "finish_reason": result.done.finish_reason,
        }
        for job, result in zip(plan.jobs, results)
    ]
    return _object(plan, model, choices, plan.usage(sum(len(r.events) for r in results)))


def _object(plan: Plan, model: str, choices: list, usage: dict) -> dict:
    return {
        "id": plan.id, "object": plan.kind, "created": plan.created, "model": model, "choices": choices,
        "usage": usage,
    }  # fmt: skip


# ---- streams ---------------------------------------------------------------------------------------------


class CompletionStream:
    """The chunks of a streamed completion: `opening()`, then `chunk(index, event)` for each engine event
    (as the choices' events interleave), then `closing()`."""

    def __init__(self, body: CompletionRequest, plan: Plan, tokenizer, model: str) -> None:
        self.body, self.plan, self.tokenizer = body, plan, tokenizer
        self.head = {"id": plan.id, "object": "text_completion", "created": plan.created, "model": model}
        self.completion_tokens = 0
        self.offsets = {job.index: 0 for job in plan.jobs}

    def _chunk(self, index: int, text: str, logprobs, finish_reason) -> dict:
        choice = {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}
        return {**self.head, "choices": [choice]}

    def opening(self) -> list[dict]:
        if not self.body.echo:
            return []
        return [self._chunk(j.index, self.tokenizer.decode(j.prompt), None, None) for j in self.plan.jobs]

    def chunk(self, index: int, event: TokenEvent | Done) -> dict | None:
        if isinstance(event, Done):
            self.completion_tokens += event.completion_tokens
            return self._chunk(index, event.text, None, event.finish_reason)
        logprobs = None
        if self.body.logprobs is not None:
            logprobs = completion_logprobs(self.tokenizer, [event], self.offsets[index])
        self.offsets[index] += len(event.text)
        return self._chunk(index, event.text, logprobs, None)

    def closing(self) -> list[dict]:
        return _usage_chunk(self.body, self.plan, self.head, self.completion_tokens)


class ChatStream:
    """The chunks of a streamed chat completion: each choice opens with the assistant's role, then its
    content as it comes, then its finish reason; the usage chunk last when asked for."""

    def __init__(self, body: ChatRequest, plan: Plan, tokenizer, model: str) -> None:
        self.body, self.plan, self.tokenizer = body, plan, tokenizer
        self.head = {
            "id": plan.id,
            "object": "chat.completion.chunk",
            "created": plan.created,
            "model": model,
        }
        self.top = chat_top_logprobs(body)
        self.completion_tokens = 0

    def _chunk(self, index: int, delta: dict, logprobs, finish_reason) -> dict:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        return {**self.head, "choices": [choice]}

    def opening(self) -> list[dict]:
        return [
            self._chunk(j.index, {"role": "assistant", "content": ""}, None, None) for j in self.plan.jobs
        ]

    def chunk(self, index: int, event: TokenEvent | Done) -> dict | None:
        if isinstance(event, Done):
            self.completion_tokens += event.completion_tokens
            delta = {"content": event.text} if event.text else {}
            return self._chunk(index, delta, None, event.finish_reason)
        logprobs = chat_logprobs(self.tokenizer, [event]) if self.top is not None else None
        if not (event.text or logprobs):
            return None  # a token that completes no character yet
        return self._chunk(index, {"content": event.text}, logprobs, None)

    def closing(self) -> list[dict]:
        return _usage_chunk(self.body, self.plan, self.head, self.completion_tokens)


def _usage_chunk(body, plan: Plan, head: dict, completion_tokens: int) -> list[dict]:
    if body.stream_options and body.stream_options.include_usage:
        return [{**head, "choices": [], "usage": plan.usage(completion_tokens)}]
    return []


# ---- log-probabilities in OpenAI's shapes ----------------------------------------------------------------


def completion_logprobs(tokenizer, events: Sequence[TokenEvent], offset: int) -> dict:
    """The completions API's logprobs object: tokens, their log-probabilities, the top alternatives and
    each token's character offset in the choice's text (which starts at `offset`)."""
    out: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for event in events:
        out["tokens"].append(tokenizer.decode([event.token]))
        out["token_logprobs"].append(event.logprob)
        out["top_logprobs"].append({tokenizer.decode([t]): lp for t, lp in (event.top or [])})
        out["text_offset"].append(offset)
        offset += len(event.text)
    return out


def prompt_logprobs(tokenizer, prompt: Sequence[int], scored) -> dict:
    """The same object for an echoed prompt (the first token has no log-probability)."""
    out: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    offset = 0
    for token, (logprob, top) in zip(prompt, scored):
        text = tokenizer.decode([token])
        out["tokens"].append(text)
        out["token_logprobs"].append(logprob)
        out["top_logprobs"].append(
            {tokenizer.decode([t]): lp for t, lp in top} if logprob is not None else None
        )
        out["text_offset"].append(offset)
        offset += len(text)
    return out


def merge_logprobs(prompt: dict, completion: dict) -> dict:
    """The prompt's log-probabilities followed by the completion's (whose offsets already count the
    echoed prompt text)."""
    return {key: prompt[key] + completion[key] for key in prompt}


def chat_logprobs(tokenizer, events: Sequence[TokenEvent]) -> dict:
    """The chat API's logprobs object: per token its text, log-probability, UTF-8 bytes and alternatives."""

    def entry(token: int, logprob: float) -> dict:
        text = tokenizer.decode([token])
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    return {
        "content": [
            {**entry(e.token, e.logprob), "top_logprobs": [entry(t, lp) for t, lp in (e.top or [])]}
            for e in events
        ]
    }
