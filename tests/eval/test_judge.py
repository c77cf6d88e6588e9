"""The LLM-judge client against a fake OpenAI-compatible endpoint on 127.0.0.1 (http.server in a thread):
good answers, garbage, a 500 then success, Retry-After, a timeout, errors that are not retried."""

from __future__ import annotations

import pytest

from scratchlm.config import JudgeConfig
from scratchlm.data.templates import format_input
from scratchlm.eval.judge import (
    JudgeError,
    chat_completion,
    judge_prompt,
    judge_responses,
    parse_score,
)
from tests.fake_judge import FakeJudge


@pytest.fixture
def fake():
    server = FakeJudge()
    yield server
    server.close()


RECORD = {"instruction": "Fix the spelling.", "input": "freind", "reference": "friend", "response": "frend"}


def config(fake, **kw) -> JudgeConfig:
    return JudgeConfig(url=fake.url, model="judge-7b", **{"timeout": 5.0, "retries": 2, "backoff": 0.5, **kw})


def test_good_answer_is_scored_with_the_books_prompt(fake):
    fake.script = [(200, "85", 0.0, {})]
    result = judge_responses([RECORD], config(fake, api_key="sk-test"))
    assert result["mean_score"] == 85 and result["scored"] == 1 and result["unscored"] == 0
    request = fake.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "judge-7b" and body["temperature"] == 0.0 and body["seed"] == 123
    prompt = body["messages"][0]["content"]
    assert body["messages"][0]["role"] == "user" and prompt == judge_prompt(
        "Fix the spelling.", "freind", "friend", "frend"
    )
    assert prompt == (
        f"Given the input `{format_input('Fix the spelling.', 'freind')}` and correct output `friend`, "
        "score the model response `frend` on a scale from 0 to 100, where 100 is the best score. "
        "Respond with the integer number only."
    )


def test_garbage_answers_are_unscored_not_guessed(fake):
    fake.script = [(200, "I cannot evaluate this.", 0.0, {}), (200, "Score: 70/100", 0.0, {})]
    result = judge_responses([RECORD, RECORD], config(fake))
    assert [r["score"] for r in result["results"]] == [None, 70]
    assert result["mean_score"] == 70 and result["unscored"] == 1


def test_a_server_error_is_retried_with_backoff(fake):
    fake.script = [(500, "overloaded", 0.0, {}), (503, "still busy", 0.0, {}), (200, "90", 0.0, {})]
    waits: list[float] = []
    assert chat_completion(config(fake), [{"role": "user", "content": "x"}], sleep=waits.append) == "90"
    assert len(fake.requests) == 3 and waits == [0.5, 1.0]


def test_retry_after_is_honoured(fake):
    fake.script = [(429, "slow down", 0.0, {"Retry-After": "2"}), (200, "60", 0.0, {})]
    waits: list[float] = []
    assert chat_completion(config(fake), [{"role": "user", "content": "x"}], sleep=waits.append) == "60"
    assert waits == [2.0]


def test_a_timeout_is_retried_then_reported(fake):
    fake.script = [(200, "80", 1.0, {})]  # every answer comes too late
    waits: list[float] = []
    with pytest.raises(JudgeError, match="after 2 tries"):
        chat_completion(
            config(fake, timeout=0.2, retries=1), [{"role": "user", "content": "x"}], waits.append
        )
    assert waits == [0.5]
    fake.script = [(200, "80", 0.5, {}), (200, "75", 0.0, {})]  # a slow answer, then a fast one
    assert (
        chat_completion(config(fake, timeout=0.2), [{"role": "user", "content": "x"}], lambda s: None) == "75"
    )


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried(fake, status):
    fake.script = [(status, "model 'judge-7b' not found", 0.0, {})]
    with pytest.raises(JudgeError, match=f"HTTP {status}.*not found"):
        chat_completion(config(fake), [{"role": "user", "content": "x"}], lambda s: None)
    assert len(fake.requests) == 1


def test_a_body_that_is_not_a_completion_is_retried(fake):
    fake.script = [(200, b"<html>proxy error</html>", 0.0, {}), (200, "55", 0.0, {})]
    assert chat_completion(config(fake), [{"role": "user", "content": "x"}], lambda s: None) == "55"


def test_an_unreachable_endpoint_stops_the_run():
    cfg = JudgeConfig(url="http://127.0.0.1:9/v1", model="m", timeout=1.0, retries=1, max_failures=2)
    with pytest.raises(JudgeError, match="2 responses in a row"):
        judge_responses([RECORD] * 5, cfg, sleep=lambda s: None)


def test_one_failure_is_recorded_and_the_run_goes_on(fake):
    fake.script = [(400, "bad", 0.0, {}), (200, "40", 0.0, {})]
    result = judge_responses([RECORD, RECORD], config(fake))
    assert result["results"][0]["score"] is None and "HTTP 400" in result["results"][0]["error"]
    assert result["mean_score"] == 40


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("85", 85),
        ("**92**", 92),
        ("100.", 100),
        ("150", 100),
        ("87.6", 88),
        ("Score: 7/100", 7),
        ("I would rate it 45 out of 100.", 45),
        ("I'd score this response an 80.\n\nHere's why: 1. accurate", 80),
        ("On a scale from 0 to 100, I give it 65.", 65),
        ("Written in 2024, it scores 30", 30),
        ("N/A", None),
        ("", None),
        ("The response is good.", None),
    ],
)
def test_parse_score(reply, score):
    assert parse_score(reply) == score
