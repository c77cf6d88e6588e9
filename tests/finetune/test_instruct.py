"""Instruction fine-tuning end to end on a tiny random GPT and synthetic instructions: the validation loss
falls, the run directory holds what it promises, LoRA's adapter and merged model agree, and the best
validation weights are the ones kept."""

from __future__ import annotations

import json

import pytest
import torch

from scratchlm.config import GenerateConfig, RunConfig, compose
from scratchlm.data.instructions import read_conversations
from scratchlm.data.templates import get_template, load_template
from scratchlm.errors import ScratchLMError
from scratchlm.eval.metrics import text_scores
from scratchlm.finetune.instruct import finetune_instruct, generate_responses, load_splits
from scratchlm.formats.model_files import load_model
from scratchlm.interop.peft import load_peft_adapter
from scratchlm.model.lora import merge_lora
from scratchlm.train.runlog import read_metrics
from tests.instruct_data import synthetic_records, tiny_model_dir, write_records

SPLIT = (0.7, 0.15, 0.15)
GENERATE = GenerateConfig(max_new_tokens=12)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return write_records(tmp_path_factory.mktemp("data") / "data.json", synthetic_records(80))


def instruct_config(model_dir, data_file, lora=None, train=None, model=None, **instruct) -> RunConfig:
    """The book's preset with this test's settings: 40 steps of a tiny model, the split seeded."""
    sections = {
        "train": {"init": str(model_dir), "max_steps": 40, "lr": 3e-3, "min_lr": 3e-4, "batch_size": 8}
        | {"eval_interval": 10, "seed": 0, **(train or {})},
        "instruct": {"data": str(data_file), "split": list(SPLIT), "split_seed": 0, "eval_batch_size": 16}
        | instruct,
        "generate": {"max_new_tokens": 12},
        "model": model or {},
    }
    if lora is not None:
        sections["lora"] = lora
    return compose("instruct", sections)


def run(model_dir, data_file, out, lora=None, **settings) -> dict:
    cfg = instruct_config(model_dir, data_file, lora, **settings)
    return finetune_instruct(cfg, out, show_progress=False).result


@pytest.fixture(scope="module")
def full_run(model_dir, data_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return out, run(model_dir, data_file, out)


def test_validation_loss_falls_and_the_run_directory_is_complete(full_run):
    out, result = full_run
    vals = [r["val_loss"] for r in read_metrics(out) if "val_loss" in r]
    assert vals[0] > 1.5 * min(vals)  # step 0 is the base model
    assert result["best_val_loss"] == min(vals)
    assert {"metrics.jsonl", "loss.png", "responses.json", "eval.json", "config.json", "baseline.json"} <= {
        p.name for p in out.iterdir()
    }
    saved = json.loads((out / "eval.json").read_text())
    assert saved["examples"] == {"train": 56, "val": 12, "test": 12, "dropped_too_long": 0}
    ppl = saved["test_response_ppl"]
    assert ppl["after"] < ppl["before"] / 2
    assert 0.0 <= saved["rouge_l"] <= 1.0 and 0.0 <= saved["exact_match"] <= 1.0
    assert saved["parameters"]["share"] == 1.0


def test_responses_record_the_test_split(full_run, data_file):
    out, _ = full_run
    records = json.loads((out / "responses.json").read_text())
    test = load_splits(data_file, fractions=SPLIT, seed=0).test
    assert len(records) == 12
    assert [(r["instruction"], r["input"], r["reference"]) for r in records] == [
        (c[0]["content"], c[0]["input"], c[1]["content"]) for c in test
    ]
    assert all(isinstance(r["response"], str) and "### Instruction:" not in r["response"] for r in records)


def test_saved_model_carries_its_template_and_answers_like_the_run(full_run, data_file):
    out, _ = full_run
    model, tokenizer = load_model(out / "model")
    template = load_template(out / "model")
    assert template == get_template("alpaca")
    test = load_splits(data_file, fractions=SPLIT, seed=0).test
    replies = generate_responses(model, tokenizer, template, [c[:-1] for c in test], GENERATE, 16)
    assert replies == [r["response"] for r in json.loads((out / "responses.json").read_text())]


def test_lora_with_masked_prompts_saves_an_adapter_that_rebuilds_the_merged_model(
    model_dir, data_file, tmp_path
):
    lora = {"rank": 4, "alpha": 8, "targets": ["qkv", "out_proj", "ff_in", "ff_out"]}
    result = run(
        model_dir,
        data_file,
        tmp_path,
        lora=lora,
        template="chatml",
        mask_prompt=True,
        baseline=True,
        max_test=5,
        model={"dropout": 0.2},  # the baseline still answers greedily: dropout off
    )
    assert 0 < result["parameters"]["share"] < 0.5
    assert result["test_response_ppl"]["after"] < result["test_response_ppl"]["before"]
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {
        p.name for p in (tmp_path / "adapter").iterdir()
    }
    merged, _ = load_model(tmp_path / "model")
    assert not any("lora" in name for name in merged.state_dict())
    rebuilt, _ = load_model(model_dir)
    load_peft_adapter(rebuilt, tmp_path / "adapter")
    merge_lora(rebuilt, unload=True)
    ids = torch.randint(0, merged.cfg.vocab_size, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (merged(ids) - rebuilt(ids)).abs().max() <= 1e-5
    assert load_template(tmp_path / "model") == get_template("chatml")
    # --baseline: the base model's replies to the same prompts, scored like the fine-tuned model's
    records = json.loads((tmp_path / "responses.json").read_text())
    base, tokenizer = load_model(model_dir)
    prompts = [c[:-1] for c in load_splits(data_file, fractions=SPLIT, seed=0).test[:5]]
    before = generate_responses(base, tokenizer, get_template("chatml"), prompts, GENERATE)
    assert len(records) == 5 and [r["response_before"] for r in records] == before
    scores = text_scores(before, [r["reference"] for r in records])
    assert result["before"] == {k: scores[k] for k in ("exact_match", "first_clause_match", "rouge_l")}


def test_the_best_validation_weights_are_kept(model_dir, data_file, tmp_path):
    """A learning rate far too high makes every step worse than the base: the base weights come back."""
    train = {"max_steps": 3, "lr": 1.0, "min_lr": 1.0, "decay": "constant", "eval_interval": 1}
    result = run(model_dir, data_file, tmp_path, train=train)
    assert result["best_step"] == 0
    base, _ = load_model(model_dir)
    kept, _ = load_model(tmp_path / "model")
    assert all(torch.equal(base.state_dict()[k], v) for k, v in kept.state_dict().items())


def test_given_splits_and_clear_errors(data_file, model_dir, tmp_path):
    val = write_records(tmp_path / "val.json", synthetic_records(5, seed=9))
    splits = load_splits(data_file, val_data=val, fractions=(0.8, 0.1, 0.1), seed=0)
    assert len(splits.val) == 5 and (len(splits.train), len(splits.test)) == (72, 8)  # 80 cut 8/9 : 1/9
    assert splits.val == read_conversations(val)
    with pytest.raises(ScratchLMError, match="already holds"):
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "metrics.jsonl").write_text("")
        run(model_dir, data_file, tmp_path / "run")
    with pytest.raises(ScratchLMError, match="longer than the model's context"):
        run(model_dir, data_file, tmp_path / "r2", max_length=999)
    with pytest.raises(ScratchLMError, match="train split is empty"):
        run(model_dir, data_file, tmp_path / "r3", max_length=8)
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()
