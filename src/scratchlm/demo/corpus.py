"""The demo's pretraining text: Python's language reference and the standard library's docstrings (every
machine with Python has them), optionally after the library's source code, or a text dataset by name."""

from __future__ import annotations

from pathlib import Path

from scratchlm.demo.config import TEXT_DATASETS, VAL_SHARE, DemoConfig
from scratchlm.errors import ScratchLMError


def documentation() -> str:
    """The language reference, then every docstring headed by its qualified name."""
    from scratchlm.data.stdlib import docstrings, reference_text

    docs = (f"{d.module}.{d.name}\n{d.text}" if d.name else f"{d.module}\n{d.text}" for d in docstrings())
    return reference_text() + "\n\n" + "\n\n".join(docs) + "\n"


def corpus(cfg: DemoConfig) -> Path:
    """The file to pretrain on (written under out/data the first time, or the named dataset's file)."""
    from scratchlm.data.stdlib import source_text

    if cfg.dataset is not None:
        from scratchlm.data.registry import get

        if cfg.dataset not in TEXT_DATASETS:
            raise ScratchLMError(
                f"--dataset {cfg.dataset}: pretraining takes a text dataset: {', '.join(TEXT_DATASETS)}"
            )
        return get(cfg.dataset, cfg.data_dir, show_progress=cfg.show_progress)
    name = "pretrain.txt" if cfg.with_source is None else f"pretrain+source-{cfg.with_source:g}MB.txt"
    path = cfg.out / "data" / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        code = "" if cfg.with_source is None else source_text(cfg.with_source) + "\n\n"
        # the code first: the held-out tail (validation) is the same documentation with or without it
        path.write_text(code + documentation(), encoding="utf-8")
    return path


def val_fraction(cfg: DemoConfig, tokenizer, text: str) -> float:
    """The share of `text`'s tokens that is its held-out tail: the last VAL_SHARE of the documentation's
    characters, so a run with --with-source is validated on the very text a run without it is."""
    if cfg.dataset is not None:
        return VAL_SHARE
    tail = text[-int(VAL_SHARE * len(documentation())) :]
    return len(tokenizer.encode_ordinary(tail)) / len(tokenizer.encode_ordinary(text))


def tokenizer_name(path: Path) -> str:
    """The demo's BPE names the text it learned from, so a later stage can check it reuses the right one."""
    return f"demo-{path.stem}"
