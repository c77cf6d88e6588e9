"""The request bodies of the OpenAI API that scratchlm serves, as pydantic models (they also make the
OpenAPI schema at /openapi.json). Fields OpenAI clients send that we do not use are accepted and ignored;
values we cannot honour are refused with a 400 naming the parameter."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StreamOptions(BaseModel):
    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1, description="vLLM's extension: keep the k most likely tokens")
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0, description="vLLM's extension (CTRL penalty)")
    n: int = Field(1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    ignore_eos: bool = Field(False, description="vLLM's extension: keep going after the end-of-text token")
    user: str | None = None

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class CompletionRequest(_Sampling):
    """POST /v1/completions. `prompt` is text, token ids, or a batch of either (one choice per prompt × n).
    `echo` with `logprobs` and `max_tokens: 0` scores a text (lm-evaluation-harness's loglikelihood)."""

    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(16, ge=0)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(_Sampling):
    """POST /v1/chat/completions: the conversation is rendered with the model's chat template."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=0)
    max_completion_tokens: int | None = Field(None, ge=0)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)


class ClassifyRequest(BaseModel):
    """POST /v1/classify (scratchlm's own route, for classifier checkpoints)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    input: str | list[str]
