"""The declared eval.json: the checker finds missing keys and wrong types at any depth; older names read."""

from __future__ import annotations

import json

import pytest

from scratchlm.errors import ScratchLMError
from scratchlm.results import (
    ClassifyResult,
    InstructResult,
    Parameters,
    check_result,
    problems,
    read_result,
)

PARAMETERS = {"trainable": 10, "total": 40, "share": 0.25}
INSTRUCT = {
    "template": "alpaca",
    "mask_prompt": True,
    "lora": None,
    "examples": {"train": 3, "val": 1, "test": 1, "dropped_too_long": 0},
    "max_length": 64,
    "steps": 4,
    "parameters": PARAMETERS,
    "best_step": 4,
    "best_val_loss": 2.5,
    "train_seconds": 1.0,
    "model_dir": "runs/x/model",
    "test_response_ppl": {"before": 30.0, "after": None},
    "before": {"exact_match": 0.0, "first_clause_match": 0.0, "rouge_l": 0.1},
}


def test_a_valid_result_passes():
    assert problems(InstructResult, INSTRUCT) == []
    assert check_result("instruct", INSTRUCT) is INSTRUCT


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"steps": None}, "steps: expected int, got NoneType"),
        ({"steps": 2.5}, "steps: expected int"),
        ({"mask_prompt": 1}, "mask_prompt: expected bool"),
        ({"parameters": {"trainable": 1, "total": 2}}, "parameters.share: missing"),
        ({"test_response_ppl": {"before": "high", "after": 1}}, "test_response_ppl.before: expected float"),
        ({"before": {"exact_match": 0.0, "rouge_l": 0.1}}, "before.first_clause_match: missing"),
        ({"examples": {"train": "3"}}, "examples.train: expected int"),
        ({"rouge_l": True}, "rouge_l: expected float, got bool"),
    ],
)
def test_departures_are_named_with_their_path(change, expected):
    found = problems(InstructResult, {**INSTRUCT, **change})
    assert any(expected in p for p in found), found


def test_missing_required_keys_and_nested_lists():
    result = {"labels": ["a"], "test": {"confusion": [[1, "x"]]}}
    found = problems(ClassifyResult, result)
    assert "best: missing" in found and "test.accuracy: missing" in found
    assert "test.confusion[0][1]: expected int, got str" in found
    assert problems(Parameters, [1]) == ["value: expected an object"]
    with pytest.raises(ScratchLMError, match="classify result departs from its declaration: test"):
        check_result("classify", result)


def test_read_result_takes_older_names_and_reports_departures(tmp_path):
    assert read_result(tmp_path, "instruct") == ({}, [])
    old = {k: v for k, v in INSTRUCT.items() if k not in ("parameters", "max_length")}
    old |= {"trainable_parameters": PARAMETERS, "allowed_max_length": 64}
    (tmp_path / "eval.json").write_text(json.dumps(old))
    data, found = read_result(tmp_path, "instruct")
    assert found == [] and data["parameters"] == PARAMETERS and data["max_length"] == 64
    (tmp_path / "eval.json").write_text(json.dumps({**INSTRUCT, "steps": "many"}))
    assert read_result(tmp_path, "instruct")[1] == ["steps: expected int, got str"]
    (tmp_path / "eval.json").write_text("[1]")
    assert read_result(tmp_path, "classify") == ({}, ["eval.json is not a JSON object"])
