"""Token ids in, text out, one token at a time: incremental decoding that never shows half a character,
cuts at stop strings and holds back text that may yet become one. Used by `stream_text` and the server."""

from __future__ import annotations

from collections.abc import Sequence

from scratchlm.tokenizer.protocol import TokenizerLike


class TextStream:
    """Feed token ids with `add`; it returns the text that is now safe to show. `stopped` turns True at a
    stop string (the text before it is returned, the stop string itself never is); `flush` returns what was
    held back when generation ends for another reason."""

    def __init__(self, tokenizer: TokenizerLike, stops: Sequence[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stops if s)
        self.ids: list[int] = []
        self.shown = 0  # characters of the decoded text already returned
        self.stopped = False

    def add(self, token: int) -> str:
        if self.stopped:
            return ""
        self.ids.append(token)
        # Decoding everything again keeps multi-token characters right; the prefix is short-lived (one
        # reply), so the quadratic cost stays small next to a forward pass.
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):  # the last token ends inside a character: wait for the rest
            return ""
        found = (text.find(stop, max(0, self.shown - len(stop))) for stop in self.stops)
        cut = min((i for i in found if i != -1), default=-1)
        if cut != -1:
            self.stopped = True
            out = text[self.shown : cut] if cut > self.shown else ""
            self.shown = max(self.shown, cut)
            return out
        safe = len(text) - pending_stop_prefix(text, self.stops)
        if safe <= self.shown:
            return ""
        out, self.shown = text[self.shown : safe], safe
        return out

    def flush(self) -> str:
        """The rest of the text (a held-back partial stop string, a dangling byte) at the end."""
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.ids)
        out, self.shown = text[self.shown :], len(text)
        return out


def pending_stop_prefix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of `text` that is the beginning of a stop string.

    >>> pending_stop_prefix("Hello ##", ["###"])
    2
    """
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest
