"""Chat sessions: templates, trimming to the context, slash commands, token probabilities."""

from __future__ import annotations

import math

import pytest

from scratchlm.config import GenerateConfig
from scratchlm.data.templates import get_template
from scratchlm.serve.chat import ChatSession, describe
from tests.tiny import tiny_gpt


@pytest.fixture(scope="module")
def model(trained):
    return tiny_gpt(vocab_size=trained.vocab_size, context_length=96, n_layers=1)


@pytest.fixture
def session(model, trained):
    s = ChatSession(model, trained, get_template("chatml"), GenerateConfig(max_new_tokens=6, temperature=0.0))
    yield s
    s.close()


def test_reply_streams_tokens_with_probabilities(session, trained):
    events = list(session.reply("What does len do?"))
    tokens = [e for e in events if e.token >= 0]
    assert tokens and all(e.logprob <= 0 and len(e.top) == 5 for e in tokens)
    assert all(e.top[0][0] == e.token for e in tokens)  # greedy takes the most likely
    assert math.exp(tokens[0].logprob) == pytest.approx(math.exp(tokens[0].top[0][1]))
    assert session.messages[-1] == {"role": "assistant", "content": session.last.text}
    assert describe(tokens[0], trained).count("%") == 6


def test_history_is_rendered_with_the_template(session):
    list(session.reply("first"))
    text, stops = session.render([*session.messages, {"role": "user", "content": "second"}])
    assert text.count("<|im_start|>user\n") == 2 and text.endswith("<|im_start|>assistant\n")
    assert "<|im_end|>" in stops


def test_long_history_is_trimmed_with_a_notice(session):
    for _ in range(6):
        list(session.reply("tell me more about the standard library modules please"))
    assert session.last.dropped > 0 or len(session.messages) < 12
    ids = session.tokenizer.encode_ordinary(session.render(session.messages)[0])
    assert len(ids) <= session.context


def test_base_model_transcript(model, trained):
    s = ChatSession(model, trained, None, GenerateConfig(max_new_tokens=3), system="Be terse.")
    try:
        text, stops = s.render([{"role": "user", "content": "hi"}])
    finally:
        s.close()
    assert text == "System: Be terse.\nUser: hi\nAssistant:" and stops == ("\nUser:", "\nSystem:")


def test_slash_commands(session):
    assert "temperature 0.3" in session.command("/temp 0.3")
    assert session.config.temperature == 0.3
    session.command("/top-k 5")
    session.command("/top-p off")
    session.command("/max-tokens 12")
    assert (session.config.top_k, session.config.top_p, session.config.max_new_tokens) == (5, None, 12)
    assert "not a valid value" in session.command("/temp hot")
    assert "must be" in session.command("/temp -1")
    assert "unknown command" in session.command("/fly")
    list(session.reply("hello"))
    assert session.command("/reset") == "conversation cleared" and session.messages == []
    assert "removed" in session.command("/system")
    assert session.command("/quit") is None
