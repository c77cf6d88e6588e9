"""An OpenAI-compatible HTTP API over the continuous-batching engine (FastAPI on uvicorn).

Routes: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (both with `stream: true` as
server-sent events ending in `data: [DONE]`), POST /v1/classify for classifier checkpoints, GET /health,
GET /openapi.json, and GET / (the chat page). Errors are OpenAI's error objects
(`{"error": {"message", "type", "param", "code"}}`), never a traceback.

Guard rails: an API key, when set, is checked on every route but the static page (which holds no data and
asks for the key); request bodies are capped; prompts that do not fit the context are a 400
(`context_length_exceeded`); `max_tokens`, `n` and token ids are checked; a full queue answers 503 with
Retry-After; a client that disconnects frees its slot; every token must come within a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from scratchlm.config import GenerateConfig
from scratchlm.data.templates import encode_prompt
from scratchlm.errors import ScratchLMError
from scratchlm.serve.engine import Done, Engine, QueueFull, TokenEvent, prompt_logprobs
from scratchlm.serve.engine import Request as Job
from scratchlm.serve.schemas import ChatRequest, ClassifyRequest, CompletionRequest


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20  # 1 MiB of JSON
    max_tokens: int | None = None  # per choice; None: the model's context
    max_n: int = 8  # choices per request (times prompts in a batch)
    max_prompts: int = 32  # prompts in one /v1/completions batch
    token_timeout_s: float = 120.0  # the longest wait for the next token (queueing included)


@dataclass
class Service:
    """What the routes need: the engine (model + batching), the tokenizer, a name, and optional extras."""

    engine: Engine | None  # None for a classifier (it answers /v1/classify only)
    tokenizer: Any
    model_name: str
    template: Any = None  # scratchlm.data.templates template, or None for a base model
    classifier: Any = None  # scratchlm.generate.classifier.Classifier, for /v1/classify
    created: int = field(default_factory=lambda: int(time.time()))
    lock: threading.Lock = field(default_factory=threading.Lock)  # one classifier batch at a time

    @property
    def context(self) -> int:
        model = self.engine.model if self.engine is not None else self.classifier.model
        return model.cfg.context_length

    def need_engine(self) -> Engine:
        if self.engine is None:
            raise APIError(
                400, "this model is a classifier: use POST /v1/classify", code="not_a_language_model"
            )
        return self.engine


class APIError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param=None, code=None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def response(self) -> JSONResponse:
        headers = {"Retry-After": "1"} if self.status in (429, 503) else None
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=headers)


def create_app(service: Service, api_key: str | None = None, limits: Limits | None = None) -> FastAPI:
    limits = limits or Limits()
    app = FastAPI(
        title="scratchlm",
        version="1",
        description="OpenAI-compatible API of a scratchlm model (completions, chat, classify).",
    )
    app.state.service = service

    @app.exception_handler(APIError)
    async def _api_error(_request, exc: APIError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        if first.get("type") == "json_invalid":
            return APIError(400, "the request body is not valid JSON", code="invalid_json").response()
        message = (
            f"{where}: {first.get('msg', 'invalid value')}" if where else first.get("msg", "invalid request")
        )
        return APIError(400, message, param=where or None).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, exc: StarletteHTTPException):
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return APIError(exc.status_code, str(exc.detail), kind).response()

    @app.exception_handler(Exception)
    async def _crash(_request, exc: Exception):  # a bug: say so in the OpenAI shape, keep serving
        return APIError(500, f"internal error: {type(exc).__name__}", "server_error").response()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(
            resources.files("scratchlm.serve").joinpath("static/chat.html").read_text("utf-8")
        )

    @app.get("/health")
    async def health():
        engine = service.engine
        busy = {"active": engine.active, "queued": engine.queued} if engine is not None else {}
        return {"status": "ok", "model": service.model_name, **busy}

    @app.get("/v1/models")
    async def models():
        card = {
            "id": service.model_name,
            "object": "model",
            "created": service.created,
            "owned_by": "scratchlm",
        }
        card["context_length"] = service.context
        return {"object": "list", "data": [card]}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, http: Request):
        _check_model(service, body.model)
        service.need_engine()
        prompts = _completion_prompts(service, body, limits)
        n = body.n
        if n > limits.max_n or n * len(prompts) > limits.max_prompts:
            raise APIError(
                400,
                f"n must be at most {limits.max_n} and n × prompts at most {limits.max_prompts}",
                param="n",
            )
        if body.max_tokens == 0:
            return await _score_only(service, body, prompts)
        config = _generate_config(service, body, [len(p) for p in prompts], body.max_tokens, limits)
        jobs = [
            (i * n + j, p, _seeded(config, body.seed, j)) for i, p in enumerate(prompts) for j in range(n)
        ]
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            return _stream(http, _completion_chunks(service, body, jobs, rid, created, limits))
        choices, usage = await _collect(http, service, jobs, body.logprobs, limits)
        out = []
        for (index, prompt, _), (_, text, events, done) in zip(jobs, choices):
            echo_text = service.tokenizer.decode(prompt) if body.echo else ""
            logprobs = None
            if body.logprobs is not None:
                logprobs = _completion_logprobs(service, events, len(echo_text))
                if body.echo:
                    scored = await _score(service, prompt, body.logprobs)
                    logprobs = _merge_logprobs(_prompt_logprobs_dict(service, prompt, scored), logprobs)
            out.append(
                {
                    "index": index,
                    "text": echo_text + text,
                    "logprobs": logprobs,
                    "finish_reason": done.finish_reason,
                }
            )
        return {
            "id": rid,
            "object": "text_completion",
            "created": created,
            "model": service.model_name,
            "choices": out,
            "usage": usage,
        }

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, http: Request):
        _check_model(service, body.model)
        service.need_engine()
        if body.n > limits.max_n:
            raise APIError(400, f"n must be at most {limits.max_n}", param="n")
        prompt_text, stops = _render_chat(service, body)
        prompt = encode_prompt(service.tokenizer, prompt_text, service.template)
        max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
        config = _generate_config(service, body, [len(prompt)], max_tokens, limits, extra_stops=stops)
        top = (body.top_logprobs or 0) if body.logprobs else None
        jobs = [(j, prompt, _seeded(config, body.seed, j)) for j in range(body.n)]
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            return _stream(http, _chat_chunks(service, body, jobs, rid, created, top, limits))
        choices, usage = await _collect(http, service, jobs, top, limits)
        out = []
        for (index, _, _), (_, text, events, done) in zip(jobs, choices):
            choice = {
                "index": index,
                "message": {"role": "assistant", "content": text},
                "logprobs": _chat_logprobs(service, events) if top is not None else None,
                "finish_reason": done.finish_reason,
            }
            out.append(choice)
        return {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": service.model_name,
            "choices": out,
            "usage": usage,
        }

    @app.post("/v1/classify")
    async def classify(body: ClassifyRequest):
        if service.classifier is None:
            raise APIError(
                404, "this model is not a classifier: /v1/classify is not available", "not_found_error"
            )
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts or len(texts) > limits.max_prompts:
            raise APIError(400, f"input: give 1 to {limits.max_prompts} texts", param="input")

        def predict():
            with service.lock:
                return service.classifier.predict(texts)

        predictions = await asyncio.get_running_loop().run_in_executor(None, predict)
        data = [
            {"index": i, "label": p.label, "probabilities": p.probabilities}
            for i, p in enumerate(predictions)
        ]
        return {"object": "list", "model": service.model_name, "data": data}

    return _Guard(app, api_key, limits.max_body_bytes)


# ---- requests to engine jobs -----------------------------------------------------------------------------


def _check_model(service: Service, name: str | None) -> None:
    if name and name != service.model_name:
        raise APIError(
            404,
            f"model {name!r} is not served here (this server has {service.model_name!r})",
            "not_found_error",
            "model",
            "model_not_found",
        )


def _completion_prompts(service: Service, body: CompletionRequest, limits: Limits) -> list[list[int]]:
    prompt = body.prompt
    if isinstance(prompt, str):
        batch: list = [prompt]
    elif prompt and all(isinstance(x, int) for x in prompt):
        batch = [prompt]
    else:
        batch = list(prompt)
    if not batch or len(batch) > limits.max_prompts:
        raise APIError(400, f"prompt: give 1 to {limits.max_prompts} prompts", param="prompt")
    vocab = service.engine.model.cfg.vocab_size
    out = []
    for item in batch:
        if isinstance(item, str):
            ids = service.tokenizer.encode_ordinary(item)  # user text: special-token strings stay text
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


def _render_chat(service: Service, body: ChatRequest) -> tuple[str, tuple[str, ...]]:
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages
    ]
    template = service.template
    if template is None:  # a base model: a plain transcript it can continue
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages) + "Assistant:"
        return text, ("\nUser:", "\nSystem:")
    try:
        return template.generation_prompt(messages), tuple(template.stop)
    except ScratchLMError as exc:
        raise APIError(400, str(exc), param="messages") from None


def _generate_config(service, body, prompt_lengths, max_tokens, limits, extra_stops=()) -> GenerateConfig:
    context = service.engine.context
    longest = max(prompt_lengths)
    if longest >= context:
        raise APIError(
            400,
            f"this model's maximum context length is {context} tokens; the prompt has {longest}",
            param="messages" if isinstance(body, ChatRequest) else "prompt",
            code="context_length_exceeded",
        )
    room = context - longest
    cap = min(room, limits.max_tokens or room)
    if max_tokens is None:
        max_tokens = cap
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


def _seeded(config: GenerateConfig, seed: int | None, j: int) -> GenerateConfig:
    """Choice j of n draws with seed + j, so n choices differ and each is reproducible."""
    return config if seed is None or j == 0 else config.replace(seed=seed + j)


async def _events(
    service: Service,
    prompt: list[int],
    config: GenerateConfig,
    logprobs,
    limits: Limits,
) -> AsyncIterator[TokenEvent | Done]:
    """The engine's events for one job, on this event loop; the job is cancelled if we stop listening."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def emit(event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone (the server is shutting down)
            loop.call_soon_threadsafe(queue.put_nowait, event)

    job = Job(prompt, config, emit, logprobs=logprobs)
    try:
        service.engine.submit(job)
    except QueueFull as exc:
        raise APIError(503, f"the server is busy: {exc}", "server_busy", code="queue_full") from None
    except ScratchLMError as exc:
        raise APIError(400, str(exc), param="prompt") from None
    try:
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=limits.token_timeout_s)
            except asyncio.TimeoutError:
                raise APIError(503, f"no token within {limits.token_timeout_s:g} s", "timeout") from None
            yield event
            if isinstance(event, Done):
                return
    finally:
        job.cancel()  # a no-op when done; frees the slot when the client went away


async def _collect(http: Request, service: Service, jobs, logprobs, limits: Limits):
    """Run every job to the end; cancel them all if the client disconnects."""

    async def one(prompt, config):
        tokens, text, events = [], "", []
        async for event in _events(service, prompt, config, logprobs, limits):
            if isinstance(event, Done):
                if event.finish_reason == "error":
                    raise APIError(500, f"generation failed: {event.error}", "server_error")
                return tokens, text + event.text, events, event
            tokens.append(event.token)
            text += event.text
            events.append(event)
        raise APIError(500, "generation ended without a result", "server_error")

    tasks = [asyncio.ensure_future(one(prompt, config)) for _, prompt, config in jobs]
    watcher = asyncio.ensure_future(_watch_disconnect(http, tasks))
    try:
        results = await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        raise APIError(499, "the client closed the request", "cancelled") from None
    finally:
        watcher.cancel()
        for task in tasks:
            task.cancel()
    prompt_tokens = sum(len(p) for p in {id(p): p for _, p, _ in jobs}.values())
    completion = sum(len(r[0]) for r in results)
    return results, {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }


async def _watch_disconnect(http: Request, tasks) -> None:
    while True:
        await asyncio.sleep(0.25)
        if await http.is_disconnected():
            for task in tasks:
                task.cancel()
            return


async def _merged(service, jobs, logprobs, limits) -> AsyncIterator[tuple[int, TokenEvent | Done]]:
    """Events of several jobs as they come, tagged with the choice index."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(index, prompt, config):
        try:
            async for event in _events(service, prompt, config, logprobs, limits):
                await queue.put((index, event))
        except APIError as exc:
            await queue.put((index, exc))

    tasks = [asyncio.ensure_future(pump(i, p, c)) for i, p, c in jobs]
    try:
        remaining = len(tasks)
        while remaining:
            index, event = await queue.get()
            if isinstance(event, APIError):
                raise event
            if isinstance(event, Done):
                remaining -= 1
            yield index, event
    finally:
        for task in tasks:
            task.cancel()


def _stream(http: Request, chunks: AsyncIterator[dict]) -> StreamingResponse:
    async def body():
        try:
            async for chunk in chunks:
                yield f"data: {json.dumps(chunk)}\n\n"
        except APIError as exc:  # headers are sent: the error travels as an event, as OpenAI does
            error = {"message": exc.message, "type": exc.kind, "code": exc.code}
            yield f"data: {json.dumps({'error': error})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _completion_chunks(service, body: CompletionRequest, jobs, rid, created, limits):
    head = {"id": rid, "object": "text_completion", "created": created, "model": service.model_name}
    usage = {
        "prompt_tokens": sum(len(p) for p in {id(p): p for _, p, _ in jobs}.values()),
        "completion_tokens": 0,
    }
    if body.echo:
        for index, prompt, _ in jobs:
            yield {
                **head,
                "choices": [
                    {
                        "index": index,
                        "text": service.tokenizer.decode(prompt),
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            }
    offsets = dict.fromkeys((i for i, _, _ in jobs), 0)
    async for index, event in _merged(service, jobs, body.logprobs, limits):
        if isinstance(event, Done):
            usage["completion_tokens"] += event.completion_tokens
            yield {
                **head,
                "choices": [
                    {
                        "index": index,
                        "text": event.text,
                        "logprobs": None,
                        "finish_reason": event.finish_reason,
                    }
                ],
            }
            continue
        logprobs = None
        if body.logprobs is not None:
            logprobs = _completion_logprobs(service, [event], offsets[index])
        offsets[index] += len(event.text)
        yield {
            **head,
            "choices": [{"index": index, "text": event.text, "logprobs": logprobs, "finish_reason": None}],
        }
    if body.stream_options and body.stream_options.include_usage:
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        yield {**head, "choices": [], "usage": usage}


async def _chat_chunks(service, body: ChatRequest, jobs, rid, created, top, limits):
    head = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": service.model_name}
    for index, _, _ in jobs:
        yield {
            **head,
            "choices": [
                {
                    "index": index,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
    usage = {"prompt_tokens": len(jobs[0][1]), "completion_tokens": 0}
    async for index, event in _merged(service, jobs, top, limits):
        if isinstance(event, Done):
            usage["completion_tokens"] += event.completion_tokens
            delta = {"content": event.text} if event.text else {}
            yield {
                **head,
                "choices": [
                    {"index": index, "delta": delta, "logprobs": None, "finish_reason": event.finish_reason}
                ],
            }
            continue
        logprobs = _chat_logprobs(service, [event]) if top is not None else None
        if event.text or logprobs:
            yield {
                **head,
                "choices": [
                    {
                        "index": index,
                        "delta": {"content": event.text},
                        "logprobs": logprobs,
                        "finish_reason": None,
                    }
                ],
            }
    if body.stream_options and body.stream_options.include_usage:
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        yield {**head, "choices": [], "usage": usage}


# ---- log-probabilities in OpenAI's shapes ------------------------------------------------------------------


def _token_text(service: Service, token: int) -> str:
    return service.tokenizer.decode([token])


def _completion_logprobs(service: Service, events: list[TokenEvent], offset: int) -> dict:
    out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for event in events:
        out["tokens"].append(_token_text(service, event.token))
        out["token_logprobs"].append(event.logprob)
        out["top_logprobs"].append({_token_text(service, t): lp for t, lp in (event.top or [])})
        out["text_offset"].append(offset)
        offset += len(event.text)
    return out


def _prompt_logprobs_dict(service: Service, prompt: list[int], scored) -> dict:
    out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    offset = 0
    for token, (logprob, top) in zip(prompt, scored):
        text = _token_text(service, token)
        out["tokens"].append(text)
        out["token_logprobs"].append(logprob)
        out["top_logprobs"].append(
            {_token_text(service, t): lp for t, lp in top} if logprob is not None else None
        )
        out["text_offset"].append(offset)
        offset += len(text)
    return out


def _merge_logprobs(prompt: dict, completion: dict) -> dict:
    """The prompt's log-probabilities followed by the completion's (whose offsets already count the
    echoed prompt text)."""
    return {
        key: prompt[key] + completion[key]
        for key in ("tokens", "token_logprobs", "top_logprobs", "text_offset")
    }


def _chat_logprobs(service: Service, events: list[TokenEvent]) -> dict:
    def entry(token: int, logprob: float) -> dict:
        text = _token_text(service, token)
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    return {
        "content": [
            {**entry(e.token, e.logprob), "top_logprobs": [entry(t, lp) for t, lp in (e.top or [])]}
            for e in events
        ]
    }


async def _score(service: Service, prompt: list[int], top: int | None):
    loop = asyncio.get_running_loop()
    model = service.engine.model
    return await loop.run_in_executor(
        None, service.engine.run_on_model, lambda: prompt_logprobs(model, prompt, top or 0)
    )


async def _score_only(service: Service, body: CompletionRequest, prompts: list[list[int]]):
    """max_tokens 0: nothing is generated; with echo the prompt comes back, scored when logprobs is set."""
    choices = []
    for i, prompt in enumerate(prompts):
        logprobs = None
        if body.logprobs is not None and body.echo:
            logprobs = _prompt_logprobs_dict(service, prompt, await _score(service, prompt, body.logprobs))
        text = service.tokenizer.decode(prompt) if body.echo else ""
        for j in range(body.n):
            choices.append(
                {"index": i * body.n + j, "text": text, "logprobs": logprobs, "finish_reason": "length"}
            )
    tokens = sum(len(p) for p in prompts)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": service.model_name,
        "choices": choices,
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
    }


# ---- the outer guard: API key and body size, before any parsing --------------------------------------------


class _BodyTooLarge(Exception):
    pass


class _Guard:
    """ASGI middleware: 401 without the right bearer key (when one is set), 413 for a body over the cap
    (by Content-Length, or counted while it streams in)."""

    def __init__(self, app: FastAPI, api_key: str | None, max_body: int) -> None:
        self.app, self.api_key, self.max_body = app, api_key, max_body
        self.state = app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.api_key and scope["path"] != "/":
            given = headers.get(b"authorization", b"").decode("latin-1")
            token = given[7:] if given.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(token.encode(), self.api_key.encode()):
                return await _send_error(
                    send,
                    APIError(
                        401,
                        "invalid or missing API key (Authorization: Bearer …)",
                        "authentication_error",
                        code="invalid_api_key",
                    ),
                )
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _send_error(send, APIError(413, f"the request body is over {self.max_body} bytes"))
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await _send_error(send, APIError(413, f"the request body is over {self.max_body} bytes"))


async def _send_error(send: Callable, error: APIError) -> None:
    response = error.response()
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
