"""Configs validate themselves, presets match GPT-2's sizes, and from_dict refuses typos."""

from __future__ import annotations

import pytest

from scratchlm.config import PRESETS, GenerateConfig, ModelConfig, from_dict, preset
from scratchlm.errors import ScratchLMError


def test_presets():
    assert preset("gpt2-medium").emb_dim == 1024 and preset("gpt2-xl").n_layers == 48
    assert preset("tiny", vocab_size=65).vocab_size == 65
    assert set(PRESETS) >= {"gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl", "tiny", "small"}
    with pytest.raises(ScratchLMError, match="unknown model preset"):
        preset("gpt5")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"emb_dim": 100, "n_heads": 3}, "not divisible"),
        ({"n_layers": 0}, "positive integer"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_model_config_validation(kwargs, message):
    with pytest.raises(ScratchLMError, match=message):
        ModelConfig(**kwargs)


def test_round_trip_and_unknown_keys():
    cfg = preset("tiny")
    assert from_dict(ModelConfig, cfg.to_dict()) == cfg
    with pytest.raises(ScratchLMError, match=r"unknown setting\(s\) \['n_embd'\]"):
        from_dict(ModelConfig, {"n_embd": 768})


def test_generate_config_validation():
    assert GenerateConfig(stop=["a"]).stop == ("a",)
    for bad in ({"temperature": -1}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}, {"max_new_tokens": -1}):
        with pytest.raises(ScratchLMError):
            GenerateConfig(**bad)
