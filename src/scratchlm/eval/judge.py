"""An LLM judge: a larger model scores each response from 0 to 100 against the reference, with the book's
prompt (chapter 7, `generate_model_scores`), over any OpenAI-compatible chat endpoint (Ollama, vLLM,
llama.cpp, scratchlm's own server).

The client uses only the standard library (`urllib`): one POST to `<url>/chat/completions` per response,
a timeout on each, and retries with exponential backoff on what is worth retrying (connection failures,
timeouts, 408/409/429 and 5xx, as OpenAI's own client does), honouring `Retry-After`. Judges answer
loosely ("I'd score this response an 80."), so the score is parsed leniently and an answer without a
usable number is recorded as unscored rather than guessed.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from scratchlm.config import JudgeConfig
from scratchlm.data.templates import format_input
from scratchlm.errors import ScratchLMError

RETRY_STATUS = {408, 409, 429}
MAX_RETRY_AFTER = 60.0


class JudgeError(ScratchLMError):
    """The judge endpoint failed for good (after the retries, or with an error not worth retrying)."""


def judge_prompt(instruction: str, input: str, reference: str, response: str) -> str:
    """The book's scoring prompt, word for word."""
    return (
        f"Given the input `{format_input(instruction, input)}` "
        f"and correct output `{reference}`, "
        f"score the model response `{response}`"
        f" on a scale from 0 to 100, where 100 is the best score. "
        f"Respond with the integer number only."
    )


_NUMBER = r"(\d+(?:\.\d+)?)"
_SCALE = re.compile(r"\b0\s*(?:to|-|–|—)\s*100\b", re.IGNORECASE)  # "a scale from 0 to 100"
_EXPLICIT = (
    re.compile(_NUMBER + r"\s*(?:/|out of)\s*100\b", re.IGNORECASE),  # "85/100", "85 out of 100"
    re.compile(r"\bscore\b\D{0,20}?" + _NUMBER, re.IGNORECASE),  # "Score: 85", "score this response an 80"
)


def parse_score(reply: str) -> int | None:
    """The score in a judge's reply, or None when it holds no usable number.

    A bare number is clamped to 0..100. Otherwise an explicit "N/100", "N out of 100" or "score … N"
    wins, then the first number in 0..100 once the scale itself ("0 to 100") is removed; larger numbers
    (years, counts) are skipped.

    >>> [parse_score(s) for s in ["85", " 92.\\n", "150", "Score: 7/100", "I'd score this response an 80."]]
    [85, 92, 100, 7, 80]
    >>> [parse_score(s) for s in ["On a scale from 0 to 100, I give 65", "In 2024 it is 40", "n/a", ""]]
    [65, 40, None, None]
    """
    text = reply.strip()
    bare = re.fullmatch(r"[*\s\"'`]*" + _NUMBER + r"[.!*\s\"'`]*", text)
    if bare:
        return _clamp(float(bare.group(1)))
    text = _SCALE.sub(" ", text)
    for pattern in _EXPLICIT:
        m = pattern.search(text)
        if m and 0 <= float(m.group(1)) <= 100:
            return _clamp(float(m.group(1)))
    for m in re.finditer(_NUMBER, text):
        if float(m.group(1)) <= 100:
            return _clamp(float(m.group(1)))
    return None


def _clamp(value: float) -> int:
    return round(min(100.0, max(0.0, value)))


# ---- the HTTP client ---------------------------------------------------------------------------------


def chat_completion(
    cfg: JudgeConfig, messages: Sequence[dict], sleep: Callable[[float], None] = time.sleep
) -> str:
    """The assistant's text for `messages`, retrying transient failures; JudgeError otherwise."""
    body = {"model": cfg.model, "messages": list(messages), "temperature": cfg.temperature, "stream": False}
    if cfg.seed is not None:
        body["seed"] = cfg.seed
    if cfg.max_tokens is not None:
        body["max_tokens"] = cfg.max_tokens
    data = json.dumps(body).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    delay = cfg.backoff
    for attempt in range(cfg.retries + 1):
        request = urllib.request.Request(cfg.endpoint, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=cfg.timeout) as response:
                return _reply_text(response.read())
        except urllib.error.HTTPError as exc:
            message = f"HTTP {exc.code} from {cfg.endpoint}: {_error_message(exc)}"
            if exc.code not in RETRY_STATUS and exc.code < 500:
                raise JudgeError(message) from None
            wait = _retry_after(exc.headers.get("Retry-After"), delay)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:  # TimeoutError: socket.timeout
            reason = getattr(exc, "reason", exc)
            message = f"{cfg.endpoint}: {reason or type(exc).__name__}"
            wait = delay
        except _BadReply as exc:
            message = f"{cfg.endpoint}: {exc}"
            wait = delay
        if attempt == cfg.retries:
            break
        sleep(wait)
        delay *= 2
    raise JudgeError(f"judge failed after {cfg.retries + 1} tries: {message}")


class _BadReply(Exception):
    """A 200 whose body is not a chat completion (a proxy's page, a truncated body)."""


def _reply_text(raw: bytes) -> str:
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise _BadReply(f"not a chat completion: {raw[:120]!r}") from None
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read()
        error = json.loads(raw).get("error", {})
        return str(error.get("message") if isinstance(error, dict) else error)[:200]
    except Exception:
        return str(exc.reason)[:200]


def _retry_after(header: str | None, default: float) -> float:
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(header))) if header else default
    except ValueError:  # an HTTP date: not worth parsing for a judge
        return default


# ---- scoring many responses ----------------------------------------------------------------------------


def score_response(cfg: JudgeConfig, record: dict, sleep: Callable[[float], None] = time.sleep) -> dict:
    """{"score": int | None, "reply": the judge's text} for one record of responses.json."""
    prompt = judge_prompt(
        record.get("instruction", ""), record.get("input", ""), record["reference"], record["response"]
    )
    reply = chat_completion(cfg, [{"role": "user", "content": prompt}], sleep)
    return {"score": parse_score(reply), "reply": reply}


def judge_responses(
    records: Sequence[dict],
    cfg: JudgeConfig,
    on_progress: Callable[[int, dict], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Score every record. Returns the mean over scored responses, the counts and one entry per record;
    a response the judge failed on is recorded with its error, and `cfg.max_failures` failures in a row
    end the run with JudgeError (the endpoint is down: no point waiting on every response)."""
    results, failures = [], 0
    for i, record in enumerate(records):
        try:
            result = score_response(cfg, record, sleep)
            failures = 0
        except JudgeError as exc:
            failures += 1
            if failures >= cfg.max_failures:
                raise JudgeError(f"{exc} ({failures} responses in a row)") from None
            result = {"score": None, "error": str(exc)}
        results.append(result)
        if on_progress is not None:
            on_progress(i, result)
    scores = [r["score"] for r in results if r["score"] is not None]
    return {
        "judge_model": cfg.model,
        "mean_score": sum(scores) / len(scores) if scores else None,
        "scored": len(scores),
        "unscored": len(results) - len(scores),
        "results": results,
    }
