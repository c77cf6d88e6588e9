"""Configs validate themselves, presets match GPT-2's sizes, and from_dict refuses typos."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from scratchlm.config import (
    PRESETS,
    GenerateConfig,
    LoRAConfig,
    ModelConfig,
    RunConfig,
    from_dict,
    preset,
    tiny,
)
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


# ---- one run config for every kind ------------------------------------------------------------------------
def test_compose_joins_the_sections_by_the_library_rules():
    from scratchlm.config import compose

    classify = compose(
        "classify", {"train": {"init": "m"}, "classify": {"data": "a.tsv"}, "lora": {"rank": 4}}
    )
    assert classify.classify.train_layers == "lora" and classify.lora.alpha == 8.0  # alpha 2 × the rank
    assert (classify.train.lr, classify.train.beta2, classify.model.dropout) == (5e-5, 0.999, 0.0)
    full = compose("instruct", {"train": {"init": "m"}})
    lora = compose("instruct", {"train": {"init": "m"}, "lora": {"rank": 8}})
    assert (full.train.lr, lora.train.lr) == (5e-5, 5e-4)  # the book's full fine-tune; LoRA's B starts at 0
    assert compose("instruct", {"train": {"lr": 1e-3}, "lora": {}}).train.lr == 1e-3  # given wins
    steps = compose("instruct", {"train": {"max_steps": 7}})
    assert steps.instruct.epochs is None and steps.train.max_steps == 7  # steps given, epochs not: steps
    both = compose("classify", {"train": {"max_steps": 7}, "classify": {"epochs": 2}})
    assert both.classify.epochs == 2
    assert compose("classify", {"classify": {"train_layers": "lora"}}).lora == LoRAConfig()
    tiny_run = compose("pretrain", {"model": {"preset": "tiny", "n_layers": 2}})
    assert tiny_run.model == tiny(n_layers=2)  # a named architecture, then its overrides
    assert compose("pretrain", {}) == RunConfig()


def test_a_run_config_round_trips_through_json_without_its_secret():
    from scratchlm.config import JudgeConfig, book_instruct

    cfg = replace(
        book_instruct(lora=True), judge=JudgeConfig(url="http://127.0.0.1:1/v1", model="j", api_key="s")
    )
    saved = json.loads(json.dumps(cfg.to_dict()))
    assert saved["kind"] == "instruct" and saved["judge"]["api_key"] is None
    assert RunConfig.from_dict(saved) == replace(cfg, judge=replace(cfg.judge, api_key=None))


@pytest.mark.parametrize(
    ("kind", "settings", "message"),
    [
        ("classify", {"classify": {"split": "0.5,0.5"}}, "three fractions"),
        ("classify", {"classify": {"train_layers": "last-0"}}, "last-N"),
        ("instruct", {"instruct": {"split": [0.5, 0.2, 0.2]}}, "sum to 1"),
        ("instruct", {"judge": {"url": "http://x"}}, "judge.url and judge.model"),
        ("pretrain", {"classify": {"data": "a"}, "kind": "classify"}, "not pretrain"),
        ("dpo", {}, "kind must be one of"),
        ("pretrain", {"train": {"eval_interval": 0}}, "eval_interval"),
        ("pretrain", {"train": {"precision": "int8"}}, "precision must be one of auto, fastest"),
        ("pretrain", {"train": {"max_minutes": 0}}, "max_minutes must be > 0"),
        ("instruct", {"train": {"max_minutes": 5}}, "max_minutes is for pretraining"),
    ],
)
def test_compose_errors_name_the_setting(kind, settings, message):
    from scratchlm.config import compose

    with pytest.raises(ScratchLMError, match=message):
        compose(kind, settings)
