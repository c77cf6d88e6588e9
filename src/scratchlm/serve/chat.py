"""A multi-turn conversation with a model: history rendered with the model's chat template (or a plain
transcript for a base model) by the renderer the server uses (`serve.conversation`), trimmed to the context
window, settings changed with slash commands.

`ChatSession.reply(text)` yields `TokenEvent`s (each with the model's probability of the token and its most
likely alternatives, for `scratchlm chat --inspect`) and keeps the reply in the history. Generation runs
on the serving engine (one slot), the same code path as `scratchlm serve`.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Iterator
from dataclasses import dataclass

from scratchlm.config import GenerateConfig
from scratchlm.data.templates import encode_prompt
from scratchlm.errors import ScratchLMError
from scratchlm.serve.conversation import render_conversation
from scratchlm.serve.engine import Done, Engine, Request, TokenEvent

HELP = """commands:
  /reset            forget the conversation (keeps the system message)
  /system TEXT      set the system message (empty: remove it)
  /temp X           temperature (0 = greedy)
  /top-k N|off      keep the N most likely tokens
  /top-p X|off      nucleus sampling
  /max-tokens N     longest reply
  /help             this text
  /quit             leave (or Ctrl-D)"""


@dataclass
class Turn:
    """What one reply did: its text, why it ended, and whether old messages were dropped to fit."""

    text: str = ""
    finish_reason: str = ""
    dropped: int = 0


class ChatSession:
    def __init__(self, model, tokenizer, template=None, config: GenerateConfig | None = None, system=None):
        self.tokenizer, self.template = tokenizer, template
        self.config = config or GenerateConfig(max_new_tokens=256, temperature=0.7, top_p=0.95)
        self.system = system
        self.messages: list[dict] = []
        self.context = model.cfg.context_length
        self.engine = Engine(model, tokenizer, max_batch=1, max_queue=1).start()
        self.last = Turn()

    def close(self) -> None:
        self.engine.stop()

    # ---- slash commands ---------------------------------------------------------------------------------
    def command(self, line: str) -> str | None:
        """Apply a slash command; the answer to show, or None for /quit."""
        name, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        try:
            if name in ("/quit", "/exit"):
                return None
            if name == "/help":
                return HELP
            if name == "/reset":
                self.messages = []
                return "conversation cleared"
            if name == "/system":
                self.system = arg or None
                return f"system message: {arg!r}" if arg else "system message removed"
            if name == "/temp":
                self.config = self.config.replace(temperature=float(arg))
            elif name == "/top-k":
                self.config = self.config.replace(top_k=None if arg == "off" else int(arg))
            elif name == "/top-p":
                self.config = self.config.replace(top_p=None if arg == "off" else float(arg))
            elif name == "/max-tokens":
                self.config = self.config.replace(max_new_tokens=int(arg))
            else:
                return f"unknown command {name}: /help lists them"
        except ValueError:
            return f"{name}: {arg!r} is not a valid value"
        except ScratchLMError as exc:
            return str(exc)
        c = self.config
        return (
            f"temperature {c.temperature:g}, top-k {c.top_k}, top-p {c.top_p}, max tokens {c.max_new_tokens}"
        )

    # ---- the conversation -------------------------------------------------------------------------------
    def render(self, messages: list[dict]) -> tuple[str, tuple[str, ...]]:
        """The prompt text for `messages` (after the system message) and the stop strings that end the
        assistant's turn: the renderer `scratchlm serve` uses too."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return render_conversation(system + messages, self.template)

    def _fit(self, messages: list[dict]) -> tuple[list[int], tuple[str, ...], int]:
        """Prompt ids that leave room for a reply, dropping the oldest exchanges as needed."""
        dropped = 0
        while True:
            text, stops = self.render(messages)
            ids = encode_prompt(self.tokenizer, text, self.template)
            room = self.context - len(ids)
            if room >= min(self.config.max_new_tokens, 32) or len(messages) <= 1:
                break
            messages = messages[2:] if len(messages) > 2 else messages[1:]
            dropped += 2
        if len(ids) >= self.context:
            raise ScratchLMError(
                f"the message is {len(ids)} tokens with its template; this model's context is {self.context}"
            )
        return ids, stops, dropped

    def reply(self, text: str) -> Iterator[TokenEvent]:
        """Stream the model's answer to `text`; afterwards `self.last` tells how it ended."""
        messages = [*self.messages, {"role": "user", "content": text}]
        ids, stops, dropped = self._fit(messages)
        if dropped:
            self.messages = self.messages[dropped:]
        max_new = min(self.config.max_new_tokens, self.context - len(ids))
        config = self.config.replace(
            max_new_tokens=max_new, stop=tuple(dict.fromkeys((*self.config.stop, *stops)))
        )
        events: queue.SimpleQueue = queue.SimpleQueue()
        request = Request(ids, config, events.put, logprobs=5)
        self.engine.submit(request)
        turn = Turn(dropped=dropped)
        try:
            while True:
                event = events.get()
                if isinstance(event, Done):
                    turn.text += event.text
                    turn.finish_reason = event.finish_reason
                    if event.text:
                        yield TokenEvent(-1, event.text)
                    break
                turn.text += event.text
                yield event
        finally:
            request.cancel()
            self.last = turn
            self.messages += [{"role": "user", "content": text}, {"role": "assistant", "content": turn.text}]


def describe(event: TokenEvent, tokenizer) -> str:
    """One line for --inspect: the token, its probability, and the most likely alternatives."""
    if event.token < 0:
        return ""
    token = tokenizer.decode([event.token])
    p = math.exp(event.logprob) if event.logprob is not None else float("nan")
    alternatives = "  ".join(
        f"{tokenizer.decode([t])!r} {math.exp(lp):.0%}" for t, lp in (event.top or [])[:5]
    )
    return f"{token!r:>16} {p:6.1%}   | {alternatives}"
