"""The demo's embedded data, read from this interpreter's own standard library."""

from __future__ import annotations

import sys

import pytest

from scratchlm.data import stdlib
from scratchlm.errors import ScratchLMError


@pytest.fixture(scope="module")
def docs():
    return stdlib.docstrings()


def test_docstrings_are_read_without_importing(docs):
    assert len(docs) > 2000
    by_name = {(d.module, d.name): d for d in docs}
    dumps = by_name[("json", "dumps")]
    assert dumps.kind == "function" and "JSON formatted" in dumps.text
    assert by_name[("json", "")].kind == "module"
    assert ("json.decoder", "JSONDecoder.decode") in by_name
    assert "antigravity" not in sys.modules  # parsing never executes a module (this one opens a browser)
    assert not any(d.module.startswith(("test.", "idlelib")) for d in docs)


def test_reference_text_is_the_help_topics():
    text = stdlib.reference_text()
    assert len(text) > 100_000 and 'The "for" statement' in text


def test_area_split_is_by_module_and_stable():
    splits = stdlib.area_examples()
    assert set(splits) == {"train", "val", "test"}
    labels = {label for _, label in splits["train"]}
    assert labels == set(stdlib.AREAS)
    assert len(splits["test"]) > 100 and len({label for _, label in splits["test"]}) >= 5
    assert stdlib.area_examples() == splits  # deterministic
    modules = {split: set() for split in splits}
    for d, _, split in stdlib.area_docstrings():
        modules[split].add(d.module)
    assert not modules["train"] & modules["test"] and not modules["train"] & modules["val"]


def test_split_of_is_a_stable_hash():
    assert stdlib.split_of("json.dumps") == stdlib.split_of("json.dumps")
    counts = {"train": 0, "val": 0, "test": 0}
    for i in range(5000):
        counts[stdlib.split_of(f"name{i}")] += 1
    assert 3800 < counts["train"] < 4200 and 350 < counts["test"] < 650


def test_qa_pairs(docs):
    qa = stdlib.qa_pairs()
    assert len(qa["train"]) > 1000 and len(qa["test"]) > 100
    pair = next(p for split in qa.values() for p in split if p["instruction"] == "What does `json.dumps` do?")
    assert pair["output"] == "Serialize ``obj`` to a JSON formatted ``str``."
    train_q = {p["instruction"] for p in qa["train"]}
    assert not train_q & {p["instruction"] for p in qa["test"]}


def test_summary_takes_the_first_sentence():
    assert stdlib.summary("Return the sum.\n\nMore text. Even more.") == "Return the sum."
    assert (
        stdlib.summary("Open a file\nand return a stream.  Details follow.")
        == "Open a file and return a stream."
    )
    assert stdlib.summary("No full stop here") == "No full stop here"


def test_source_text_is_whole_files_up_to_a_limit():
    small = stdlib.source_text(max_mb=0.2)
    assert small.startswith("# module ") and 0 < len(small) <= 200_000
    assert small.count("# module ") >= 2  # whole files, in sorted order, until the next would not fit
    code = stdlib.source_text(max_mb=None)
    assert "# module json\n" in code and "def dumps(" in code
    assert "Serialize ``obj`` to a JSON formatted ``str``" not in code  # docstrings are not repeated
    assert "# module pydoc_data" not in code  # the language reference is in the corpus already
    with pytest.raises(ScratchLMError, match="no whole source file"):
        stdlib.source_text(max_mb=1e-6)


def test_without_docstrings_keeps_the_code_around_them():
    code = (
        '"""Module doc."""\n# a comment\n\x0c\nclass C:\n    r"""Class doc, é."""\n    x = "kept"\n\n'
        "    async def m(self): 'inline doc'; return 1\n\n"
        'def f():\n    """Two\n    lines."""\n    return "also kept"\n'
    )
    stripped = stdlib.without_docstrings(code)
    assert stripped == (
        '...\n# a comment\n\x0c\nclass C:\n    ...\n    x = "kept"\n\n'
        "    async def m(self): ...; return 1\n\n"
        'def f():\n    ...\n    return "also kept"\n'
    )
    compile(stripped, "<stripped>", "exec")
