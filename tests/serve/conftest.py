"""A tiny language model behind the serving engine, for the server tests."""

from __future__ import annotations

import pytest

from scratchlm.data.templates import get_template
from scratchlm.serve.app import Service
from scratchlm.serve.engine import Engine
from tests.tiny import tiny_gpt


@pytest.fixture(scope="module")
def make_service(trained):
    """make_service(context_length, emb_dim, max_batch): a Service over a fresh seeded one-layer GPT with the
    `trained` tokenizer and the ChatML template."""

    def make(context_length: int = 128, emb_dim: int = 32, max_batch: int = 4) -> Service:
        model = tiny_gpt(
            vocab_size=trained.vocab_size, context_length=context_length, n_layers=1, emb_dim=emb_dim
        )
        engine = Engine(model, trained, max_batch=max_batch).start()
        return Service(engine, trained, "tiny", template=get_template("chatml"))

    return make
