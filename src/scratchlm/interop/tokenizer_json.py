"""Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) for byte-level BPE, both ways.

Export writes what `tokenizers.Tokenizer.from_file` and `transformers.PreTrainedTokenizerFast` load and
encode to the same ids as ours. Knows nothing about models.
"""

from __future__ import annotations

import os
from pathlib import Path

import regex

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json
from scratchlm.tokenizer import EOT, GPT2_PATTERN, PATTERNS, Tokenizer
from scratchlm.tokenizer.byte_alphabet import bytes_to_str, str_to_bytes


def to_hf_pattern(pattern: str) -> str:
    r"""The split regex in the Oniguruma dialect HF uses: a possessive counted repeat `{m,n}+` means
    "repeat the repeat" there, so it becomes the greedy `{m,n}` (the same chunks in GPT-4's split);
    `++`, `*+` and `?+` are possessive in both dialects, and an escaped brace is left alone.

    >>> print(to_hf_pattern(r"\p{N}{1,3}+|\p{L}++|\}+|x{2}+"))
    \p{N}{1,3}|\p{L}++|\}+|x{2}
    """
    return regex.sub(r"(?<!\\)(\{\d+(?:,\d*)?\})\+", r"\1", pattern)


def _merges_for(ranks: dict[bytes, int]) -> list[tuple[str, str]]:
    """Merges that make HF's merge-rank BPE act like rank-based BPE (tiktoken's rule): every split of a
    token into two tokens of lower rank is a merge, ordered by the token's rank."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if ranks.get(left, rank) < rank and ranks.get(right, rank) < rank:
                merges.append((rank, ranks[left], ranks[right], left, right))
    merges.sort()
    return [(bytes_to_str(left), bytes_to_str(right)) for *_, left, right in merges]


def to_tokenizer_json(tok: Tokenizer) -> dict:
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    if tok.pattern == GPT2_PATTERN:
        pre_tokenizer = byte_level
    else:
        pre_tokenizer = {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": to_hf_pattern(tok.pattern)},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {**byte_level, "use_regex": False},
            ],
        }
    vocab = {bytes_to_str(b): i for b, i in sorted(tok.ranks.items(), key=lambda kv: kv[1])}
    added = [
        {
            "id": i,
            "content": text,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for text, i in sorted(tok.special_tokens.items(), key=lambda kv: kv[1])
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": None,
        "decoder": {**byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            # A chunk that is a whole token is taken as is, as tiktoken does.
            "ignore_merges": True,
            "vocab": {**vocab, **{text: i for text, i in tok.special_tokens.items()}},
            "merges": [list(m) for m in _merges_for(tok.ranks)],
        },
    }


def save_tokenizer_json(
    tok: Tokenizer, directory: str | os.PathLike, model_max_length: int | None = None
) -> Path:
    """Write `tokenizer.json` and `tokenizer_config.json` into `directory`; return the tokenizer.json path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tokenizer.json"
    write_json(path, to_tokenizer_json(tok))
    config: dict = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length or int(1e30),
    }
    if tok.eot_id is not None:
        config.update(bos_token=EOT, eos_token=EOT, unk_token=EOT)
    write_json(directory / "tokenizer_config.json", config)
    return path


def from_tokenizer_json(data: dict, name: str = "hf") -> Tokenizer:
    """A Tokenizer from a parsed byte-level BPE tokenizer.json (GPT-2's, or one trained by HF or by us)."""
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise ScratchLMError(
            f"tokenizer.json: model type {model.get('type')!r} is not supported (byte-level BPE only)"
        )
    # Steps we do not reproduce would silently change the ids: refuse them.
    if data.get("normalizer"):
        raise ScratchLMError("tokenizer.json: normalizers are not supported (the ids would differ)")
    if model.get("byte_fallback") or model.get("dropout"):
        raise ScratchLMError("tokenizer.json: byte_fallback and BPE dropout are not supported")
    post = data.get("post_processor") or {}
    if post.get("type") == "TemplateProcessing" and any("SpecialToken" in p for p in post.get("single", [])):
        raise ScratchLMError("tokenizer.json: a post-processor that adds special tokens is not supported")
    pattern = _pattern_of(data.get("pre_tokenizer"))
    specials = {t["content"]: int(t["id"]) for t in data.get("added_tokens") or []}
    ranks: dict[bytes, int] = {}
    for token, i in model.get("vocab", {}).items():
        if token in specials:
            continue
        try:
            ranks[str_to_bytes(token)] = int(i)
        except KeyError:
            raise ScratchLMError(
                f"tokenizer.json: token {token!r} is not in the byte-level alphabet (not a byte-level BPE)"
            ) from None
    return Tokenizer(ranks, pattern, specials, name=name)


def load_tokenizer_json(path: str | os.PathLike) -> Tokenizer:
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    data = read_json(path)
    if not isinstance(data, dict):
        raise ScratchLMError(f"{path}: not a tokenizer.json file")
    return from_tokenizer_json(data, name=path.parent.name or "hf")


def _pattern_of(pre: dict | None) -> str:
    def bad() -> ScratchLMError:
        return ScratchLMError(
            "tokenizer.json: expected a ByteLevel pre-tokenizer, or a Split regex followed by ByteLevel"
        )

    if not pre:
        raise bad()
    if pre.get("type") == "ByteLevel":
        if not pre.get("use_regex", True) or pre.get("add_prefix_space"):
            raise bad()
        return GPT2_PATTERN
    if pre.get("type") == "Sequence":
        steps = pre.get("pretokenizers", [])
        if (
            len(steps) == 2
            and steps[0].get("type") == "Split"
            and "Regex" in steps[0].get("pattern", {})
            and steps[1].get("type") == "ByteLevel"
            and not steps[1].get("use_regex", True)
        ):
            hf = steps[0]["pattern"]["Regex"]
            # Map our own exported dialect back to the original form of the known patterns.
            return next((p for p in PATTERNS.values() if to_hf_pattern(p) == hf), hf)
    raise bad()
