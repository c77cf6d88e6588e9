"""A Hugging Face `tokenizer.json` run by the `tokenizers` library, behind scratchlm's tokenizer methods.

The modern families' tokenizers (Llama 3's and Qwen's byte-level BPEs with their own splitting rules,
SentencePiece-style BPEs with byte fallback, normalizers, added tokens) are formats our BPE does not
reproduce, so they are not re-implemented: the field's own library runs them, and the ids are those of
`transformers.AutoTokenizer` (tested). What scratchlm adds is the interface the rest of the package uses:
`encode` (special-token strings become their ids, as a chat template's markers must), `encode_ordinary`
(every string is plain text: what a user typed can never forge a marker), `decode`, `vocab_size` and
`eot_id` (the end-of-sequence token from `tokenizer_config.json` or `generation_config.json`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json

TOKENIZER_JSON = "tokenizer.json"
# A Hub directory's tokenizer: what a copy carries (the chat template lives in the config or its own file).
HF_TOKENIZER_FILES = (
    TOKENIZER_JSON,
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)
MARKER_FORMAT = "hf-tokenizers"  # our tokenizer file, when it points at a copied tokenizer.json


def token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or {"content": ...} (AddedToken)."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class HFTokenizer:
    """`tokenizer.json` (+ `tokenizer_config.json`) of a Hugging Face model directory."""

    def __init__(self, directory: str | os.PathLike) -> None:
        from tokenizers import Tokenizer as Backend

        directory = Path(directory)
        path = directory / TOKENIZER_JSON
        try:
            self.backend = Backend.from_file(str(path))
        except FileNotFoundError:
            raise ScratchLMError(f"{directory}: no {TOKENIZER_JSON}") from None
        except Exception as exc:  # the library's own parse errors
            raise ScratchLMError(f"{path}: not a tokenizer the tokenizers library can read ({exc})") from None
        self.directory = directory
        self.name = directory.name
        config_path = directory / "tokenizer_config.json"
        self.config: dict = read_json(config_path) if config_path.is_file() else {}
        # Added tokens (the chat markers among them), string -> id in id order.
        added = sorted(self.backend.get_added_tokens_decoder().items())
        self.special_tokens = {token.content: i for i, token in added}
        self.eos_token = token_text(self.config.get("eos_token"))
        self._eot_id = self._find_eos()

    def token_id(self, token: Any) -> int | None:
        """The id of a special token as tokenizer_config.json names it (a string or an AddedToken dict)."""
        text = token_text(token)
        return self.backend.token_to_id(text) if text is not None else None

    def _find_eos(self) -> int | None:
        if self.eos_token is not None:
            found = self.backend.token_to_id(self.eos_token)
            if found is None:
                raise ScratchLMError(
                    f"{self.directory}: eos_token {self.eos_token!r} is not in the vocabulary"
                )
            return found
        generation = self.directory / "generation_config.json"
        if generation.is_file():
            eos = read_json(generation).get("eos_token_id")
            eos = eos[0] if isinstance(eos, list) and eos else eos
            return eos if isinstance(eos, int) else None
        return None

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def eot_id(self) -> int | None:
        """The end-of-sequence id: generation stops there."""
        return self._eot_id

    def encode(
        self, text: str, *, allowed_special: Any = "all", add_special_tokens: bool = False, **_: Any
    ) -> list[int]:
        """Ids of `text`, special-token strings (`<|im_start|>`) as their ids. No BOS is added unless asked:
        a chat template writes its own, as transformers' `apply_chat_template` relies on."""
        if not allowed_special:
            return self.encode_ordinary(text)
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of `text` as plain text: a special token's string is split like any other text."""
        self.backend.encode_special_tokens = True
        try:
            return self.backend.encode(text, add_special_tokens=False).ids
        finally:
            self.backend.encode_special_tokens = False

    def save(self, path: str | os.PathLike) -> Path:
        """Copy the tokenizer's files beside `path` and write there our tokenizer file, which says that the
        tokenizers library runs them (so a fine-tuned model's directory loads the very same tokenizer)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for name in HF_TOKENIZER_FILES:
            source = self.directory / name
            if source.is_file() and source.resolve() != (path.parent / name).resolve():
                shutil.copyfile(source, path.parent / name)
        write_json(path, {"format": MARKER_FORMAT, "version": 1, "file": TOKENIZER_JSON})
        return path

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """Text of `ids`, special tokens included as their strings (so stop strings can see them). Bytes
        that are not whole UTF-8 always become U+FFFD (the library's rule; `errors` is accepted for the
        interface of scratchlm's own tokenizer). An id past the vocabulary becomes U+FFFD too: models pad
        their embedding past their tokenizer (Qwen2.5: 151,936 rows for 151,665 tokens), and a sampled padding
        row has no text."""
        ids = [int(i) for i in ids]
        if any(i < 0 for i in ids):
            raise ScratchLMError(f"token id {min(ids)} is negative")
        if all(i < self.vocab_size for i in ids):
            return self.backend.decode(ids, skip_special_tokens=False)
        pieces, run = [], []
        for i in ids:
            if i < self.vocab_size:
                run.append(i)
                continue
            pieces.append(self.backend.decode(run, skip_special_tokens=False) if run else "")
            pieces.append("\ufffd")
            run = []
        pieces.append(self.backend.decode(run, skip_special_tokens=False) if run else "")
        return "".join(pieces)
