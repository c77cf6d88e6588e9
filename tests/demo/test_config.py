"""The demo pretrains with the shipped CPU recipe, configs/cpu-5min.yaml: the same model and the same
training settings (its own tokenizer and time share in place of the file's vocab and minutes)."""

from __future__ import annotations

from pathlib import Path

import yaml

from scratchlm.config import RunConfig, TrainConfig, compose
from scratchlm.demo.config import PRETRAIN
from scratchlm.demo.stages import model_config

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "cpu-5min.yaml"
BOOKKEEPING = {"max_minutes", "eval_interval", "eval_batches", "checkpoint_interval", "log_interval"}


def test_the_shipped_recipe_is_a_pretraining_config():
    settings = yaml.safe_load(RECIPE.read_text())
    cfg = compose("pretrain", settings | {"data": {**settings["data"], "inputs": ["input.txt"]}})
    assert isinstance(cfg, RunConfig) and cfg.train.max_minutes == 5
    assert cfg.train.precision == "fastest" and cfg.model.positions == "rope"


def test_the_demo_pretrains_with_the_shipped_recipe():
    settings = yaml.safe_load(RECIPE.read_text())
    cfg = compose("pretrain", settings | {"data": {**settings["data"], "inputs": ["input.txt"]}})
    assert model_config(cfg.model.vocab_size) == cfg.model
    recipe = {k: v for k, v in settings["train"].items() if k not in BOOKKEEPING}
    assert recipe == PRETRAIN
    assert set(PRETRAIN) <= set(TrainConfig.__dataclass_fields__)
