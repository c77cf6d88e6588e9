"""The arguments of every run command (pretrain, finetune classify|instruct): one mechanism.

`--config FILE.yaml` (sections as in config.json), then `--section.key value` for any setting (these flags
are generated from the config dataclasses, with the kind's preset as their defaults), then a few short
aliases for the common ones (`--model`, `--data`, `--lr`, ...). `--resume` continues the run in `--out`
from its own config.json, with the settings given here over it. The rules that join sections live in
`scratchlm.config.compose`, not here.
"""

from __future__ import annotations

import argparse
import difflib
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from scratchlm.config import SECTIONS, RunConfig, compose, deep_merge
from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json

# The sections a kind's command line offers.
KIND_SECTIONS = {
    "pretrain": ("model", "data", "train", "lora"),
    "classify": ("model", "train", "lora", "classify"),
    "instruct": ("model", "train", "lora", "instruct", "generate", "judge"),
}

# Short aliases: flag -> (setting, help). A flag that takes no value sets the setting to true.
COMMON = {
    "--model": ("train.init", "the model to start from: a model directory, a run directory or a Hub name"),
    "--lr": ("train.lr", "learning rate"),
    "--batch-size": ("train.batch_size", "sequences per step"),
    "--max-steps": ("train.max_steps", "optimizer steps (instead of the task's epochs)"),
    "--seed": ("train.seed", "seed of everything random in the run (data order, initialisation, dropout)"),
    "--device": ("train.device", "auto, cpu, cuda, cuda:N or mps"),
    "--lora-rank": ("lora.rank", "train a rank-R LoRA adapter on the frozen model (alpha 2 × R)"),
}
ALIASES: dict[str, dict[str, tuple[str, str]]] = {
    "pretrain": {k: COMMON[k] for k in ("--lr", "--batch-size", "--max-steps", "--seed", "--device")},
    "classify": {
        **COMMON,
        "--data": ("classify.data", "labelled texts: .tsv, .csv, .jsonl or .json"),
        "--val": ("classify.val", "validation table (default: split off --data)"),
        "--test": ("classify.test", "test table (default: split off --data)"),
        "--epochs": ("classify.epochs", "passes over the training split"),
        "--train-layers": ("classify.train_layers", "head | last-N | all | lora"),
        "--text-field": ("classify.text_field", "the text's column name, or 0-based index (no header)"),
        "--label-field": ("classify.label_field", "the label's column name, or 0-based index"),
        "--labels": ("classify.labels", "the classes in id order, e.g. ham,spam"),
        "--balance": ("classify.balance", "none | undersample | weights (the training split only)"),
        "--split": ("classify.split", "train,val,test fractions, stratified"),
        "--max-length": ("classify.max_length", "tokens per text (default: the longest, up to the context)"),
        "--select": ("classify.select", "accuracy | macro_f1 | loss: which validation score picks the best"),
    },
    "instruct": {
        **COMMON,
        "--data": ("instruct.data", "Alpaca JSON/JSONL (instruction, input, output) or chat JSONL"),
        "--val": ("instruct.val", "validation file (default: split off --data)"),
        "--test": ("instruct.test", "test file (default: split off --data)"),
        "--template": ("instruct.template", "alpaca, chatml or phi3"),
        "--epochs": ("instruct.epochs", "passes over the training split"),
        "--split": ("instruct.split", "train,val,test fractions"),
        "--max-length": ("instruct.max_length", "tokens per example (default: the context length)"),
        "--mask-prompt": ("instruct.mask_prompt", "learn only the responses (flag)"),
        "--baseline": ("instruct.baseline", "answer the test split with the base model too (flag)"),
        "--max-new-tokens": ("generate.max_new_tokens", "tokens per test response"),
        "--judge-url": ("judge.url", "an OpenAI-compatible API base URL for an LLM judge"),
        "--judge-model": ("judge.model", "the judge's model name"),
        "--judge-key": ("judge.api_key", "the judge's API key (never written to disk)"),
    },
}
FLAGS = {"instruct.mask_prompt", "instruct.baseline"}
# -t is the tokenizer everywhere else (tokenizer and data commands): --template has no short form.
SHORT = {"--model": "-m", "--data": "-d", "--batch-size": "-b"}


def add_run_arguments(parser: argparse.ArgumentParser, kind: str) -> None:
    """--config, --out, --resume, --quiet, the kind's aliases and a --section.key flag per setting."""
    parser.add_argument("--config", "-c", help="a YAML file of sections (model, train, ...; see configs/)")
    parser.add_argument("--out", "-o", required=True, help="the run directory")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    common = parser.add_argument_group("common settings (short for --section.key)")
    for flag, (setting, help_text) in ALIASES[kind].items():
        names = (flag, SHORT[flag]) if flag in SHORT else (flag,)
        if setting in FLAGS:
            common.add_argument(*names, dest=setting, action="store_const", const="true", help=help_text)
        else:
            nargs = "+" if _takes_many(setting) else None
            common.add_argument(
                *names, dest=setting, nargs=nargs, metavar="VALUE", help=f"{help_text} (--{setting})"
            )
    defaults = _preset_values(kind)
    for section in KIND_SECTIONS[kind]:
        group = parser.add_argument_group(f"{section} settings")
        for f in fields(SECTIONS[section]):
            setting = f"{section}.{f.name}"
            many = _takes_many(setting)
            # A fine-tune's architecture is its base model's: only dropout is shown (others are refused).
            hidden = section == "model" and kind != "pretrain" and f.name != "dropout"
            default = (defaults.get(section) or {}).get(f.name)
            group.add_argument(
                f"--{setting}",
                dest=setting,
                nargs="+" if many else None,
                metavar="VALUE",
                help=argparse.SUPPRESS if hidden else f"default: {default}",
            )
    parser.set_defaults(run_kind=kind)
    parser.error = _one_line_error  # type: ignore[method-assign]


def _takes_many(setting: str) -> bool:
    """Whether a setting is a list (its flag takes one or more values, each may be comma-separated)."""
    section, key = setting.split(".", 1)
    kind = next(f.type for f in fields(SECTIONS[section]) if f.name == key)
    return str(kind).startswith(("tuple", "Split"))


def _one_line_error(message: str) -> None:
    raise ScratchLMError(f"{message} (see --help)")


def explain_unknown(kind: str, unknown: list[str]) -> str:
    """One line for the first argument the run command does not know, with the nearest real setting."""
    arg = next((a for a in unknown if a.startswith("-")), unknown[0])
    section, _, key = arg.lstrip("-").partition(".")
    if not key:
        return f"unrecognized argument {arg} (settings are --section.key; see --help)"
    if section not in KIND_SECTIONS[kind]:
        return f"{arg}: unknown section {section!r}; {kind} has {', '.join(KIND_SECTIONS[kind])}"
    names = [f.name for f in fields(SECTIONS[section])]
    near = difflib.get_close_matches(key.replace("-", "_"), names, n=1)
    hint = f" (did you mean --{section}.{near[0]}?)" if near else ""
    return f"{arg}: unknown setting of {section}{hint}"


def run_finetune(args: argparse.Namespace, kind: str, finetune: Any) -> tuple[RunConfig, dict | None]:
    """Run a fine-tune (`finetune(cfg, out, resume=, show_progress=)`) from the command line and write its
    report: (its config, its result, or None (said on the terminal) when a signal stopped it early)."""
    from scratchlm.report import write_report_safely

    cfg = run_config(args, kind)
    outcome = finetune(cfg, args.out, resume=args.resume, show_progress=not args.quiet)
    write_report_safely(args.out, args.command_line)
    if outcome.stopped:
        print(f"stopped at step {outcome.state.step:,}: --resume continues the run in {args.out}")
        return cfg, None
    return cfg, outcome.result


def run_config(args: argparse.Namespace, kind: str) -> RunConfig:
    """The RunConfig the command line describes: preset < --config YAML < --section.key and aliases; with
    --resume, the run's own config.json < what this command line gives."""
    settings = deep_merge(_read_yaml(args.config), _overrides(args))
    saved_path = Path(args.out) / "config.json"
    if args.resume and saved_path.is_file():
        saved = read_json(saved_path)
        saved_kind = saved.get("kind", "pretrain") if isinstance(saved, dict) else "unknown"
        if saved_kind != kind:
            raise ScratchLMError(f"{args.out} is a {saved_kind} run: it cannot be resumed as {kind}")
        return RunConfig.from_dict(deep_merge(saved, settings))
    return compose(kind, settings)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if "." not in dest or value is None:
            continue
        section, key = dest.split(".", 1)
        if isinstance(value, list) and dest != "data.inputs":  # "a,b" is a list too (paths are not split)
            value = [part for v in value for part in v.split(",") if part.strip()]
        parsed = [_scalar(v) for v in value] if isinstance(value, list) else _scalar(value)
        tree.setdefault(section, {})[key] = parsed
    return tree


def _scalar(text: str) -> Any:
    """A command-line value read as YAML reads a scalar (1e-3, true, null; none too); else it stays text."""
    if text.lower() == "none":
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if value is None or isinstance(value, bool | int | float) else text


def _read_yaml(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ScratchLMError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ScratchLMError(f"{path}: not valid YAML{where}: {reason}") from None
    if not isinstance(data, dict):
        raise ScratchLMError(f"{path}: expected a mapping of sections (model, data, train, ...)")
    for section, values in data.items():
        if values is not None and not isinstance(values, dict) and section != "kind":
            raise ScratchLMError(f"{path}: section {section!r} must be a mapping")
    return data


def _preset_values(kind: str) -> dict[str, Any]:
    from scratchlm.config import LoRAConfig, book_classify, book_instruct, pretrain_preset

    preset = {"pretrain": pretrain_preset, "classify": book_classify, "instruct": book_instruct}[kind]()
    values = preset.to_dict()
    values["lora"] = values["lora"] or LoRAConfig().to_dict() | {"alpha": "2 × rank"}
    return values
