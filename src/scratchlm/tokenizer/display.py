"""How tokens look on a screen: a token's text (bytes that are part of a character as \\x escapes) and a
layout of tokens in columns with their ids beneath (`scratchlm tokenizer show`, the demo's tour)."""

from __future__ import annotations

import unicodedata

from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.tokenizer.word import WordTokenizer


def token_text(tok: Tokenizer | WordTokenizer, token_id: int) -> str:
    """How one token looks on screen: its text, or \\x escapes for bytes that are part of a character."""
    if isinstance(tok, WordTokenizer):
        return tok.id_to_token[token_id]
    return tok.token_bytes(token_id).decode("utf-8", errors="backslashreplace")


COLORS = [153, 223, 194, 218, 187, 152]  # pale 256-colour backgrounds, readable with black text


def display_width(text: str) -> int:
    """Terminal columns: wide (CJK, most emoji) characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def render_tokens(pieces: list[str], ids: list[int], color: bool, width: int) -> str:
    """Lay tokens out in columns with their ids beneath, wrapping at `width`."""
    lines: list[str] = []
    top: list[str] = []
    bottom: list[str] = []
    used = 0
    for n, (piece, token_id) in enumerate(zip(pieces, ids)):
        shown = piece.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
        pad = max(display_width(shown), len(str(token_id))) - display_width(shown)
        cell = display_width(shown) + pad
        if used and used + cell + 1 > width:
            lines += ["".join(top), "".join(bottom)]
            top, bottom, used = [], [], 0
        if color:
            top.append(f"\x1b[30;48;5;{COLORS[n % len(COLORS)]}m{shown}\x1b[0m" + " " * (pad + 1))
            bottom.append(f"\x1b[2m{token_id:<{cell}}\x1b[0m ")
        else:
            top.append(shown + " " * pad + "|")
            bottom.append(f"{token_id:<{cell}} ")
        used += cell + 1
    if top:
        lines += ["".join(top), "".join(bottom)]
    return "\n".join(line.rstrip() for line in lines)
