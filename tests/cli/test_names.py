"""One name for one idea across every command: the options of all commands (each subcommand's own parser,
as `--help` shows it) are read and checked against one table of names."""

from __future__ import annotations

import argparse
from collections import defaultdict

from scratchlm.cli.main import COMMANDS, build_parser
from scratchlm.cli.options import dtype_name

# A short flag means one thing wherever it appears.
SHORT = {
    "-m": "--model",
    "-d": "--data",
    "-t": "--tokenizer",
    "-o": ("--out", "--output"),  # a run or output directory; classify's predictions file
    "-n": "--max-new-tokens",
    "-T": "--temperature",
    "-b": "--batch-size",
    "-c": "--config",
    "-i": "--input",
    "-f": "--file",
    "-p": "--prompt",
    "-q": "--quiet",
    "-r": "--responses",
}
# Spellings another command once used for the same idea: only as an alias beside the one name.
ONE_NAME = {
    "--batch": "--batch-size",
    "--context": "--context-length",
    "--max-tokens": "--max-new-tokens",
    "--val-data": "--val",
    "--split-seed": "--seed",
}


def options() -> dict[str, list[tuple[str, argparse.Action]]]:
    """Command path -> its options, for every command and verb."""
    found: dict[str, list] = defaultdict(list)

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.option_strings and not isinstance(action, argparse._HelpAction):
                found[path].append(action)

    for name in COMMANDS:
        root = build_parser([name])
        (commands,) = [a for a in root._actions if isinstance(a, argparse._SubParsersAction)]
        walk(commands.choices[name], name)
    return found


def test_a_short_flag_means_one_thing_everywhere():
    wrong = [
        f"{path}: {short} is {action.option_strings}"
        for path, actions in options().items()
        for action in actions
        for short, long in SHORT.items()
        if short in action.option_strings and not set(action.option_strings) & set(_tuple(long))
    ]
    assert not wrong, wrong


def test_an_old_spelling_is_only_an_alias_of_the_one_name():
    wrong = [
        f"{path}: {old} without {new}"
        for path, actions in options().items()
        for action in actions
        for old, new in ONE_NAME.items()
        if old in action.option_strings and new not in action.option_strings
        and not (old == "--max-tokens" and "--max-tokens-cap" in action.option_strings)  # serve's cap
    ]  # fmt: skip
    assert not wrong, wrong


def test_the_common_options_have_one_form():
    seen = options()
    outs = [(p, a.option_strings) for p, acts in seen.items() for a in acts if "--out" in a.option_strings]
    assert len(outs) >= 8 and all("-o" in names for _, names in outs), outs
    dtypes = [(p, a) for p, acts in seen.items() for a in acts if "--dtype" in a.option_strings]
    assert {p for p, _ in dtypes} >= {"generate", "chat", "serve", "model info", "model diff"}
    assert all(a.type is dtype_name and a.default == "fp32" for _, a in dtypes)
    models = [a.option_strings for acts in seen.values() for a in acts if "--model" in a.option_strings]
    assert len(models) >= 7 and all("-m" in names for names in models)


def _tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)
