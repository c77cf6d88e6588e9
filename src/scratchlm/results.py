"""What a finished fine-tune's `eval.json` holds, declared once.

The fine-tunes check their result against these declarations before writing it (a missing or mistyped key
is a bug, caught by their tests), and the run report reads eval.json by these names through
`read_result`, which names what does not match (a file from an older version, a hand edit) instead of
failing the report. `NotRequired` keys are present when the run had what they measure (a test split, a
baseline, a judge, LoRA). (No `from __future__ import annotations` here: TypedDict needs the annotations
evaluated to tell NotRequired keys.)
"""

import types
import typing
from pathlib import Path
from typing import Any, NotRequired, TypedDict, Union

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json

RESULT_FILE = "eval.json"


class Parameters(TypedDict):
    trainable: int
    total: int
    share: float  # trainable / total


class Scores(TypedDict):
    precision: float
    recall: float
    f1: float


class ClassScores(Scores):
    support: int  # examples of the class


class SplitScores(TypedDict):
    loss: float  # mean cross-entropy, nats
    accuracy: float
    examples: int
    per_class: dict[str, ClassScores]
    macro: Scores  # unweighted means over the classes
    labels: list[str]
    confusion: list[list[int]]  # counts[true][predicted]


class Best(TypedDict):
    step: int | None  # the evaluation whose weights were kept
    select: str  # the validation score that chose it: accuracy, macro_f1 or loss


class ClassifyResult(TypedDict):
    labels: list[str]  # the classes in id order
    test: SplitScores
    val: SplitScores  # of the kept weights
    best: Best
    parameters: Parameters
    examples: dict[str, dict[str, int]]  # split -> label -> count
    max_length: int  # tokens per text
    truncated: dict[str, int]  # split -> texts cut to max_length
    steps: int
    seconds: dict[str, float]
    device: str


class BeforeAfter(TypedDict):
    before: float | None  # the base model's
    after: float | None  # the fine-tuned model's


class TextScores(TypedDict):
    exact_match: float
    first_clause_match: float
    rouge_l: float


class JudgeScores(TypedDict):
    judge_model: str
    mean_score: float | None
    scored: int
    unscored: NotRequired[int]  # responses the judge gave no score


class InstructResult(TypedDict):
    template: str
    mask_prompt: bool
    lora: dict | None  # the LoRA settings, None for full fine-tuning
    examples: dict[str, int]  # split -> examples, and dropped_too_long
    max_length: int  # tokens per example
    steps: int
    parameters: Parameters
    best_step: int | None
    best_val_loss: float | None
    train_seconds: float
    model_dir: str
    baseline_seconds: NotRequired[float]
    adapter_dir: NotRequired[str]  # the PEFT adapter, with LoRA
    test_response_nll: NotRequired[BeforeAfter]  # nats per response token
    test_response_ppl: NotRequired[BeforeAfter]
    test_response_tokens: NotRequired[int]
    exact_match: NotRequired[float]
    first_clause_match: NotRequired[float]
    rouge_l: NotRequired[float]
    responses: NotRequired[int]  # test responses generated (responses.json)
    generate_seconds: NotRequired[float]
    before: NotRequired[TextScores]  # the base model's answers, scored the same way
    judge: NotRequired[JudgeScores]


SCHEMAS: dict[str, type] = {"classify": ClassifyResult, "instruct": InstructResult}
# Keys older versions wrote under another name, read as today's.
RENAMED = {"trainable_parameters": "parameters", "allowed_max_length": "max_length"}


def problems(schema: type, value: Any, where: str = "") -> list[str]:
    """Where `value` (parsed JSON) departs from `schema` (a TypedDict or a type hint): missing keys and
    values of the wrong type, as 'test.macro.f1: missing'."""
    origin, args = typing.get_origin(schema), typing.get_args(schema)
    if origin in (Union, types.UnionType):
        options = [problems(a, value, where) for a in args]
        return [] if any(not p for p in options) else min(options, key=len)
    if schema is type(None):
        return [] if value is None else [f"{where or 'value'}: {value!r} is not null"]
    if typing.is_typeddict(schema):
        if not isinstance(value, dict):
            return [f"{where or 'value'}: expected an object"]
        hints = typing.get_type_hints(schema)
        found = []
        for key, hint in hints.items():
            path = f"{where}.{key}" if where else key
            if key in value:
                found += problems(_required(hint), value[key], path)
            elif key in schema.__required_keys__:
                found.append(f"{path}: missing")
        return found
    kind = origin or schema
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        return [f"{where or 'value'}: expected {kind.__name__}, got {type(value).__name__}"]
    if kind is list and args:
        return [p for i, item in enumerate(value) for p in problems(args[0], item, f"{where}[{i}]")]
    if kind is dict and len(args) == 2:
        return [p for k, item in value.items() for p in problems(args[1], item, f"{where}.{k}")]
    return []


def _required(hint):
    """The type inside NotRequired[...]."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is NotRequired else hint


def check_result(kind: str, result: dict) -> dict:
    """`result`, after checking it against the kind's declaration (a ScratchLMError names what departs)."""
    found = problems(SCHEMAS[kind], result)
    if found:
        raise ScratchLMError(f"the {kind} result departs from its declaration: " + "; ".join(found[:5]))
    return result


def read_result(run: Path, kind: str) -> tuple[dict, list[str]]:
    """A run's eval.json (older names read as today's) and where it departs from the declaration: ({}, [])
    when there is none (an unfinished run)."""
    path = Path(run) / RESULT_FILE
    if not path.is_file():
        return {}, []
    data = read_json(path)
    if not isinstance(data, dict):
        return {}, [f"{RESULT_FILE} is not a JSON object"]
    for old, new in RENAMED.items():
        if old in data and new not in data:
            data[new] = data.pop(old)
    return data, problems(SCHEMAS[kind], data) if kind in SCHEMAS else []
