"""Generation: cached == uncached (greedy, 200 tokens, and past the context window), batches of unequal
prompts equal each prompt alone, EOS and stop strings, streaming text, seeds."""

from __future__ import annotations

import pytest
import torch

from scratchlm.config import GenerateConfig, tiny
from scratchlm.errors import ScratchLMError
from scratchlm.generate.generate import (
    generate,
    generate_batch,
    generate_text,
    stream_text,
    stream_tokens,
    text_to_token_ids,
    token_ids_to_text,
)
from scratchlm.generate.text_stream import pending_stop_prefix
from tests.tiny import tiny_gpt


@pytest.fixture(scope="module")
def model():
    return tiny_gpt(vocab_size=2000, context_length=256)


def test_cached_greedy_equals_uncached_for_200_tokens(model):
    x = torch.randint(0, 2000, (1, 12))
    cached = generate(model, x, max_new_tokens=200)
    uncached = generate(model, x, max_new_tokens=200, use_cache=False)
    assert cached.shape == (1, 212)
    assert torch.equal(cached, uncached)


def test_past_the_context_window_cached_equals_uncached():
    short = tiny_gpt(vocab_size=50257, context_length=16)
    x = torch.randint(0, 50257, (2, 10))
    assert torch.equal(
        generate(short, x, max_new_tokens=30), generate(short, x, max_new_tokens=30, use_cache=False)
    )


@pytest.mark.parametrize("use_cache", [True, False])
def test_batched_prompts_equal_each_prompt_alone(model, use_cache):
    prompts = [[1, 2, 3, 4, 5, 6, 7], [9, 8], [100, 200, 300]]
    batch = generate_batch(model, prompts, max_new_tokens=15, use_cache=use_cache)
    alone = [generate_batch(model, [p], max_new_tokens=15)[0] for p in prompts]
    assert batch == alone


def test_seeded_sampling_is_reproducible(model):
    x = torch.randint(0, 2000, (1, 5))
    config = GenerateConfig(max_new_tokens=20, temperature=1.0, top_k=50, top_p=0.9, seed=3)
    assert torch.equal(generate(model, x, config), generate(model, x, config))
    assert torch.equal(generate(model, x, config), generate(model, x, config.replace(use_cache=False)))


def test_eos_stops_rows(model):
    x = torch.tensor([[5, 6, 7]])
    first = generate(model, x, max_new_tokens=1)[0, -1].item()
    out = generate(model, x, max_new_tokens=10, eos_id=first)
    assert out.shape == (1, 4)  # stopped right after EOS
    assert list(stream_tokens(model, [5, 6, 7], max_new_tokens=10, eos_id=first)) == [first]


def test_repetition_penalty_changes_greedy_output(model):
    x = torch.randint(0, 2000, (1, 5))
    plain = generate(model, x, max_new_tokens=30)
    penalised = generate(model, x, max_new_tokens=30, repetition_penalty=5.0)
    assert not torch.equal(plain, penalised)
    assert len(set(penalised[0, 5:].tolist())) >= len(set(plain[0, 5:].tolist()))


class CharTokenizer:
    """A fake tokenizer: one id per character (ids < 128), id 0 is end-of-text."""

    eot_id = 0

    def encode(self, text, **kwargs):
        return [ord(c) for c in text]

    def encode_ordinary(self, text):
        return self.encode(text)

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


class ScriptedModel(torch.nn.Module):
    """A fake model whose greedy continuation is a fixed script, whatever the input."""

    def __init__(self, script: str):
        super().__init__()
        self.cfg = tiny(vocab_size=128, context_length=512)
        self.script = [ord(c) for c in script]
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, token_ids, kv_cache=None, padding_mask=None, position_ids=None, last_only=False):
        B, T = token_ids.shape
        start = kv_cache.pos if kv_cache is not None else 0
        if kv_cache is not None:
            kv_cache.advance(T)
        logits = torch.full((B, T, 128), -1e9)
        n_prompt = self.n_prompt
        for t in range(T):
            step = start + t - n_prompt + 1
            if 0 <= step < len(self.script):
                logits[:, t, self.script[step]] = 0.0
            else:
                logits[:, t, 0] = 0.0
        return logits


def test_stop_strings_and_streaming():
    tok = CharTokenizer()
    model = ScriptedModel("Hello, world! STOP here")
    model.n_prompt = 2
    pieces = list(stream_text(model, tok, "hi", max_new_tokens=50, stop=("STOP",)))
    assert "".join(pieces) == "Hello, world! "
    assert len(pieces) > 1  # streamed, not all at the end
    assert generate_text(model, tok, "hi", max_new_tokens=50) == "Hello, world! STOP here"  # EOS ends it
    assert generate_text(model, tok, "hi", max_new_tokens=5) == "Hello"
    # A stop string is never half shown: "wor" is held back until it cannot be "world!".
    assert generate_text(model, tok, "hi", max_new_tokens=50, stop=("world!",)) == "Hello, "


def testpending_stop_prefix():
    assert pending_stop_prefix("abc wo", ("world",)) == 2
    assert pending_stop_prefix("abc", ("world",)) == 0
    assert pending_stop_prefix("x\n\nUs", ("\n\nUser:",)) == 4


def test_book_helpers(gpt2):
    ids = text_to_token_ids("Every effort moves you<|endoftext|>", gpt2)
    assert ids.shape == (1, 5) and ids[0, -1].item() == 50256
    assert token_ids_to_text(ids, gpt2) == "Every effort moves you<|endoftext|>"


def test_bad_prompts(model):
    with pytest.raises(ScratchLMError, match="at least one token"):
        generate_batch(model, [[]])
    with pytest.raises(ScratchLMError, match=r"\(batch, tokens\)"):
        generate(model, torch.tensor([1, 2, 3]))
