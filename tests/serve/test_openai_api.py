"""OpenAI's API as pure translation: request bodies to jobs, engine events to responses and stream chunks,
checked by calling functions (no server, no engine thread)."""

from __future__ import annotations

import pytest

from scratchlm.data.templates import get_template
from scratchlm.serve.chat import ChatSession
from scratchlm.serve.conversation import TRANSCRIPT_STOPS, render_conversation
from scratchlm.serve.engine import Done, TokenEvent
from scratchlm.serve.openai_api import (
    APIError,
    ChatStream,
    CompletionStream,
    Finished,
    Limits,
    chat_plan,
    chat_response,
    check_model,
    completion_plan,
    completion_response,
    merge_logprobs,
    prompt_logprobs,
    score_only_response,
)
from scratchlm.serve.schemas import ChatRequest, CompletionRequest
from tests.tiny import tiny_gpt

CONTEXT, VOCAB = 64, 300


def completion(**body):
    return CompletionRequest(**{"prompt": "def f", **body})


def chat(messages=None, **body):
    return ChatRequest(messages=messages or [{"role": "user", "content": "hi"}], **body)


def refused(call, *args, **kwargs) -> APIError:
    with pytest.raises(APIError) as info:
        call(*args, **kwargs)
    return info.value


def test_completion_jobs_per_prompt_and_choice(trained):
    plan = completion_plan(
        completion(prompt=[[1, 2], [5, 6, 7]], n=2, seed=9, max_tokens=4, stop="\n"),
        trained,
        VOCAB,
        CONTEXT,
        Limits(),
    )
    assert [job.index for job in plan.jobs] == [0, 1, 2, 3]
    assert plan.prompts == [[1, 2], [5, 6, 7]]
    assert [job.prompt for job in plan.jobs][2:] == [[5, 6, 7]] * 2
    assert [job.config.seed for job in plan.jobs] == [9, 10, 9, 10]  # choice j draws with seed + j
    assert plan.jobs[0].config.max_new_tokens == 4 and plan.jobs[0].config.stop == ("\n",)
    assert plan.prompt_tokens == 5 and plan.id.startswith("cmpl-")
    texts = completion_plan(completion(prompt=["a b", "c"]), trained, VOCAB, CONTEXT, Limits())
    assert texts.prompts == [trained.encode_ordinary("a b"), trained.encode_ordinary("c")]
    assert completion_plan(completion(max_tokens=0), trained, VOCAB, CONTEXT, Limits()).jobs == []


def test_budget_defaults_to_what_fits_under_the_cap(trained):
    prompt = list(range(10))
    free = completion_plan(completion(prompt=prompt, max_tokens=None), trained, VOCAB, CONTEXT, Limits())
    capped = completion_plan(
        completion(prompt=prompt, max_tokens=None), trained, VOCAB, CONTEXT, Limits(max_tokens=7)
    )
    assert free.jobs[0].config.max_new_tokens == CONTEXT - 10
    assert capped.jobs[0].config.max_new_tokens == 7


@pytest.mark.parametrize(
    ("body", "limits", "param", "code"),
    [
        (completion(prompt=[3, VOCAB]), Limits(), "prompt", None),
        (completion(prompt=""), Limits(), "prompt", None),
        (completion(prompt=[]), Limits(), "prompt", None),
        (completion(prompt=list(range(CONTEXT))), Limits(), "prompt", "context_length_exceeded"),
        (completion(max_tokens=CONTEXT), Limits(), "max_tokens", "context_length_exceeded"),
        (completion(max_tokens=9), Limits(max_tokens=8), "max_tokens", None),
        (completion(n=3), Limits(max_n=2), "n", None),
        (completion(prompt=["a"] * 3, n=2), Limits(max_prompts=4), "n", None),
        (completion(stop=["a", "b", "c", "d", "e"]), Limits(), "stop", None),
        (completion(stop="x" * 201), Limits(), "stop", None),
    ],
)
def test_completion_refusals_name_the_parameter(trained, body, limits, param, code):
    error = refused(completion_plan, body, trained, VOCAB, CONTEXT, limits)
    assert (error.status, error.param, error.code) == (400, param, code)
    assert error.body()["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_404():
    check_model(None, "tiny")
    check_model("tiny", "tiny")
    error = refused(check_model, "gpt-4", "tiny")
    assert (error.status, error.code, error.param) == (404, "model_not_found", "model")


@pytest.mark.parametrize("template", [None, "alpaca", "chatml"])
def test_chat_and_serve_render_a_conversation_alike(trained, template):
    """One renderer: `scratchlm chat` and the server prompt the same conversation with the same ids and
    stop strings (before, a base model's transcript stopped differently in the two, and serve refused a
    multi-turn conversation on an Alpaca model that chat answered)."""
    tpl = get_template(template) if template else None
    history = [
        {"role": "user", "content": "What does len do?"},
        {"role": "assistant", "content": "It counts."},
        {"role": "user", "content": "And sorted?"},
    ]
    session = ChatSession(
        tiny_gpt(vocab_size=trained.vocab_size, n_layers=1), trained, tpl, system="Be terse."
    )
    try:
        text, stops = session.render(history)
    finally:
        session.close()
    body = chat([{"role": "developer", "content": "Be terse."}, *history], max_tokens=3)
    plan = chat_plan(body, trained, tpl, 512, Limits())
    assert plan.prompts == [trained.encode_ordinary(text)]
    assert set(stops) <= set(plan.jobs[0].config.stop)
    assert (text, stops) == render_conversation([{"role": "system", "content": "Be terse."}, *history], tpl)
    if template is None:
        assert stops == TRANSCRIPT_STOPS and text.endswith("User: And sorted?\nAssistant:")
    if template == "alpaca":  # the latest instruction, with the system message as preamble
        assert "And sorted?" in text and "What does len do?" not in text and text.startswith("Be terse.")


def test_chat_refusals(trained):
    error = refused(chat_plan, chat(n=9), trained, None, 512, Limits(max_n=8))
    assert error.param == "n"
    only_system = chat([{"role": "system", "content": "x"}])
    assert refused(chat_plan, only_system, trained, get_template("chatml"), 512, Limits()).param == "messages"
    long = chat([{"role": "user", "content": "word " * 200}])
    assert refused(chat_plan, long, trained, None, 64, Limits()).code == "context_length_exceeded"


def events(trained, text: str) -> list[TokenEvent]:
    ids = trained.encode_ordinary(text)
    return [TokenEvent(t, trained.decode([t]), -0.5, [(t, -0.5), (0, -2.0)]) for t in ids]


def test_completion_response_with_echo_and_logprobs(trained):
    body = completion(prompt="def f", max_tokens=3, echo=True, logprobs=1)
    plan = completion_plan(body, trained, VOCAB, CONTEXT, Limits())
    generated = events(trained, "(x):")
    result = Finished("(x):", generated, Done("length", completion_tokens=len(generated)))
    prompt = plan.jobs[0].prompt
    scores = [[(None, [])] + [(-1.0, [(t, -1.0)]) for t in prompt[1:]]]
    out = completion_response(body, plan, [result], trained, "tiny", scores)
    choice = out["choices"][0]
    assert out["object"] == "text_completion" and out["model"] == "tiny"
    assert choice["text"] == "def f(x):" and choice["finish_reason"] == "length"
    logprobs = choice["logprobs"]
    assert "".join(logprobs["tokens"]) == "def f(x):"
    assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
    assert logprobs["text_offset"] == sorted(logprobs["text_offset"])
    assert logprobs["text_offset"][len(prompt)] == len("def f")  # the completion's offsets count the echo
    assert out["usage"] == {
        "prompt_tokens": len(prompt),
        "completion_tokens": len(generated),
        "total_tokens": len(prompt) + len(generated),
    }
    assert merge_logprobs(prompt_logprobs(trained, [], []), logprobs) == logprobs


def test_score_only_response(trained):
    body = completion(prompt=["ab", "cd"], max_tokens=0, echo=True, logprobs=0, n=2)
    plan = completion_plan(body, trained, VOCAB, CONTEXT, Limits())
    scores = [[(None, [])] + [(-1.0, [])] * (len(p) - 1) for p in plan.prompts]
    out = score_only_response(body, plan, trained, "tiny", scores)
    assert [c["index"] for c in out["choices"]] == [0, 1, 2, 3]
    assert [c["text"] for c in out["choices"]] == ["ab", "ab", "cd", "cd"]
    assert out["usage"]["completion_tokens"] == 0


def test_completion_stream_chunks(trained):
    body = completion(prompt="def", max_tokens=3, n=2, stream=True, echo=True, logprobs=0,
                      stream_options={"include_usage": True})  # fmt: skip
    plan = completion_plan(body, trained, VOCAB, CONTEXT, Limits())
    stream = CompletionStream(body, plan, trained, "tiny")
    opening = stream.opening()
    assert [c["choices"][0]["text"] for c in opening] == ["def", "def"]
    a, b = events(trained, " f"), events(trained, " g")
    chunks = [stream.chunk(0, a[0]), stream.chunk(1, b[0]), stream.chunk(0, Done("stop", "", 0, 1))]
    chunks.append(stream.chunk(1, Done("length", "!", 0, 1)))
    assert [c["choices"][0]["index"] for c in chunks] == [0, 1, 0, 1]
    assert chunks[0]["choices"][0]["logprobs"]["tokens"] == [" f"]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "stop", "length"]
    assert chunks[3]["choices"][0]["text"] == "!"
    (usage,) = stream.closing()
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 2
    assert usage["usage"]["prompt_tokens"] == len(plan.prompts[0])  # one prompt, counted once for n = 2
    assert {c["id"] for c in [*opening, *chunks, usage]} == {plan.id}


def test_chat_stream_and_response(trained):
    body = chat(max_tokens=4, stream=True, logprobs=True, top_logprobs=1)
    plan = chat_plan(body, trained, get_template("chatml"), 512, Limits())
    stream = ChatStream(body, plan, trained, "tiny")
    (first,) = stream.opening()
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    (token,) = events(trained, "x")
    chunk = stream.chunk(0, token)
    entry = chunk["choices"][0]["logprobs"]["content"][0]
    assert chunk["choices"][0]["delta"] == {"content": "x"} and entry["bytes"] == list(b"x")
    assert len(entry["top_logprobs"]) == 2
    assert stream.chunk(0, Done("stop"))["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert stream.closing() == []  # no usage chunk unless asked
    whole = chat_response(body, plan, [Finished("x", [token], Done("stop"))], trained, "tiny")
    assert whole["choices"][0]["message"] == {"role": "assistant", "content": "x"}
    assert whole["object"] == "chat.completion" and whole["usage"]["completion_tokens"] == 1
    assert whole["choices"][0]["logprobs"]["content"][0]["token"] == "x"
