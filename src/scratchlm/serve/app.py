"""An OpenAI-compatible HTTP API over the continuous-batching engine (FastAPI on uvicorn).

Routes: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (both with `stream: true` as
server-sent events ending in `data: [DONE]`), POST /v1/classify for classifier checkpoints, GET /health,
GET /openapi.json, and GET / (the chat page). Errors are OpenAI's error objects
(`{"error": {"message", "type", "param", "code"}}`), never a traceback.

This file is the thin part: routes, and the bridge between asyncio and the engine's thread. What a request
means and what a client gets back is translated in `openai_api.py` (no HTTP there); the API key and body cap
are checked before any of this by `guard.py`. Guard rails here: a full queue answers 503 with Retry-After,
a client that disconnects frees its slot, and every token must come within a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from scratchlm.errors import ScratchLMError
from scratchlm.serve.engine import Done, Engine, QueueFull, TokenEvent, prompt_logprobs
from scratchlm.serve.engine import Request as EngineRequest
from scratchlm.serve.guard import Guard
from scratchlm.serve.openai_api import (
    APIError,
    ChatStream,
    CompletionStream,
    Finished,
    Job,
    Limits,
    chat_plan,
    chat_response,
    chat_top_logprobs,
    check_model,
    completion_plan,
    completion_response,
    score_only_response,
)
from scratchlm.serve.schemas import ChatRequest, ClassifyRequest, CompletionRequest

__all__ = ["APIError", "Limits", "Service", "create_app"]


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


def create_app(service: Service, api_key: str | None = None, limits: Limits | None = None) -> Guard:
    limits = limits or Limits()
    app = FastAPI(
        title="scratchlm",
        version="1",
        description="OpenAI-compatible API of a scratchlm model (completions, chat, classify).",
    )
    app.state.service = service
    _add_error_handlers(app)

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
        return {"object": "list", "data": [{**card, "context_length": service.context}]}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, http: Request):
        check_model(body.model, service.model_name)
        engine = service.need_engine()
        plan = completion_plan(body, service.tokenizer, engine.model.cfg.vocab_size, engine.context, limits)
        name, tokenizer = service.model_name, service.tokenizer
        if not plan.jobs:  # max_tokens 0: score the prompts only
            scores = await _scores(service, body, plan.prompts)
            return score_only_response(body, plan, tokenizer, name, scores)
        if body.stream:
            return _stream(service, CompletionStream(body, plan, tokenizer, name), body.logprobs, limits)
        results = await _collect(http, service, plan.jobs, body.logprobs, limits)
        scores = await _scores(service, body, [job.prompt for job in plan.jobs])
        return completion_response(body, plan, results, tokenizer, name, scores)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, http: Request):
        check_model(body.model, service.model_name)
        engine = service.need_engine()
        plan = chat_plan(body, service.tokenizer, service.template, engine.context, limits)
        top = chat_top_logprobs(body)
        if body.stream:
            return _stream(
                service, ChatStream(body, plan, service.tokenizer, service.model_name), top, limits
            )
        results = await _collect(http, service, plan.jobs, top, limits)
        return chat_response(body, plan, results, service.tokenizer, service.model_name)

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

    return Guard(app, api_key, limits.max_body_bytes)


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure as OpenAI's error object: ours, pydantic's validation, HTTP's, and bugs (a 500 that
    names the exception's type and keeps the server serving)."""

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
    async def _crash(_request, exc: Exception):
        return APIError(500, f"internal error: {type(exc).__name__}", "server_error").response()


# ---- the bridge: engine events on this event loop ---------------------------------------------------------


async def _events(service: Service, job: Job, logprobs, limits: Limits) -> AsyncIterator[TokenEvent | Done]:
    """The engine's events for one job, on this event loop; the job is cancelled if we stop listening."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def emit(event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone (the server is shutting down)
            loop.call_soon_threadsafe(queue.put_nowait, event)

    request = EngineRequest(job.prompt, job.config, emit, logprobs=logprobs)
    try:
        service.engine.submit(request)
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
        request.cancel()  # a no-op when done; frees the slot when the client went away


async def _collect(
    http: Request, service: Service, jobs: list[Job], logprobs, limits: Limits
) -> list[Finished]:
    """Run every job to the end; cancel them all if the client disconnects."""

    async def one(job: Job) -> Finished:
        text, events = "", []
        async for event in _events(service, job, logprobs, limits):
            if isinstance(event, Done):
                if event.finish_reason == "error":
                    raise APIError(500, f"generation failed: {event.error}", "server_error")
                return Finished(text + event.text, events, event)
            text += event.text
            events.append(event)
        raise APIError(500, "generation ended without a result", "server_error")

    tasks = [asyncio.ensure_future(one(job)) for job in jobs]
    watcher = asyncio.ensure_future(_watch_disconnect(http, tasks))
    try:
        return list(await asyncio.gather(*tasks))
    except asyncio.CancelledError:
        raise APIError(499, "the client closed the request", "cancelled") from None
    finally:
        watcher.cancel()
        for task in tasks:
            task.cancel()


async def _watch_disconnect(http: Request, tasks) -> None:
    while True:
        await asyncio.sleep(0.25)
        if await http.is_disconnected():
            for task in tasks:
                task.cancel()
            return


async def _merged(service, jobs: list[Job], logprobs, limits) -> AsyncIterator[tuple[int, TokenEvent | Done]]:
    """Events of several jobs as they come, tagged with the choice index."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(job: Job):
        try:
            async for event in _events(service, job, logprobs, limits):
                await queue.put((job.index, event))
        except APIError as exc:
            await queue.put((job.index, exc))

    tasks = [asyncio.ensure_future(pump(job)) for job in jobs]
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


def _stream(
    service: Service, chunks: CompletionStream | ChatStream, logprobs, limits: Limits
) -> StreamingResponse:
    """Server-sent events: the stream's chunks as the engine's events come, then `data: [DONE]`."""

    async def body():
        try:
            for chunk in chunks.opening():
                yield f"data: {json.dumps(chunk)}\n\n"
            async for index, event in _merged(service, chunks.plan.jobs, logprobs, limits):
                chunk = chunks.chunk(index, event)
                if chunk is not None:
                    yield f"data: {json.dumps(chunk)}\n\n"
            for chunk in chunks.closing():
                yield f"data: {json.dumps(chunk)}\n\n"
        except APIError as exc:  # headers are sent: the error travels as an event, as OpenAI does
            error = {"message": exc.message, "type": exc.kind, "code": exc.code}
            yield f"data: {json.dumps({'error': error})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _scores(service: Service, body: CompletionRequest, prompts: list[list[int]]) -> list | None:
    """Each prompt scored token by token when the request echoes it with log-probabilities (else None);
    a prompt repeated for n choices is scored once."""
    if not (body.echo and body.logprobs is not None):
        return None
    loop = asyncio.get_running_loop()
    model, top = service.engine.model, body.logprobs or 0
    done: dict[int, list] = {}
    for prompt in prompts:
        if id(prompt) not in done:
            done[id(prompt)] = await loop.run_in_executor(
                None, service.engine.run_on_model, lambda p=prompt: prompt_logprobs(model, p, top)
            )
    return [done[id(p)] for p in prompts]
