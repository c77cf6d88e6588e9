"""Every `scratchlm` command the README and the guides show is one the command line accepts: its command,
its flags and their values parse (nothing is run), so a renamed flag cannot leave a guide behind."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from scratchlm.cli.main import build_parser
from scratchlm.errors import ScratchLMError

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^(?:\$ )?(?:[A-Z_]+=\S+ )*(?:(?:torchrun|python) [^#]*-m )?scratchlm (?P<rest>.*)")


def code_blocks(text: str) -> list[str]:
    """The contents of the page's fenced code blocks, but Python and JSON ones."""
    blocks, current, label = [], None, None
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current, label = [], line.strip()[3:].strip()
            else:
                if label not in ("python", "json"):
                    blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def documented_commands(text: str) -> list[str]:
    """The scratchlm command lines in a page's code blocks (output lines that mention scratchlm do not
    start with it): continuations joined; comments and the shell around a command (an environment prefix,
    `torchrun … -m`, a pipe) left out; a line with a `…` placeholder skipped."""
    commands = []
    for block in code_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            match = COMMAND.match(line.strip())
            if match is None or "…" in line:
                continue
            words = shlex.split(match["rest"], comments=True)
            for stop in ("|", ">", "&&", ";"):
                words = words[: words.index(stop)] if stop in words else words
            if words and not words[0].startswith("-"):
                commands.append(shlex.join(words))
    return commands


ALL = [(page.name, command) for page in PAGES for command in documented_commands(page.read_text())]


def test_the_pages_show_commands():
    assert len(ALL) > 45
    assert {name for name, _ in ALL} >= {"README.md", "serve.md", "finetune.md", "train.md"}


def refusal(command: str) -> str | None:
    """Why the command line refuses `scratchlm COMMAND` (None: it parses to a runnable command)."""
    argv = shlex.split(command)
    parser = build_parser(argv)
    error = io.StringIO()
    try:
        with contextlib.redirect_stderr(error):
            args, unknown = parser.parse_known_args(argv)
    except SystemExit:
        return error.getvalue().strip().splitlines()[-1]
    except ScratchLMError as exc:  # the run commands explain their own refusals
        return str(exc)
    if unknown:
        return f"unknown {unknown}"
    return None if callable(getattr(args, "run", None)) else "no command to run"


@pytest.mark.parametrize(("page", "command"), ALL, ids=[f"{p}: {c[:60]}" for p, c in ALL])
def test_a_documented_command_parses(page, command):
    assert refusal(command) is None, f"{page}: `scratchlm {command}`: {refusal(command)}"


def test_a_wrong_command_is_caught():
    assert refusal("generate -m gpt2 --max-tokenz 5") == "unknown ['--max-tokenz', '5']"
    assert "invalid choice" in refusal("serve --model m --dtype fp8")
    assert "--out" in refusal("finetune classify -m base -d x.tsv")
    assert refusal("pretrain -c c.yaml -o runs/x --train.lr 1e-3") is None


def test_the_extractor():
    text = (
        "```bash\nscratchlm generate -m gpt2 \\\n    -p 'Hi there'   # a comment\n"
        "SCRATCHLM_API_KEY=k scratchlm serve --model m\npip install scratchlm\nserve it: scratchlm serve\n"
        "torchrun --nproc_per_node 2 -m scratchlm pretrain -c c.yaml | tee log\n```\n"
    )
    assert documented_commands(text) == [
        "generate -m gpt2 -p 'Hi there'",
        "serve --model m",
        "pretrain -c c.yaml",
    ]
