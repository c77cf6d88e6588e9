"""A model's own chat template (Jinja, from its `tokenizer_config.json` or `chat_template.jinja`), rendered
the way `transformers`' `apply_chat_template` renders it: a sandboxed Jinja environment with `trim_blocks`
and `lstrip_blocks`, the `loopcontrols` extension, `tojson` that keeps non-ASCII text, `raise_exception` and
`strftime_now`, and the tokenizer's special tokens (`bos_token`, `eos_token`, ...) as variables.

`JinjaTemplate` has the methods of scratchlm's own templates (`generation_prompt`, `segments`, `stop`), so
`generate --chat`, `chat` and `serve` use a Hugging Face model's template as they use ChatML. Its markers are
the tokenizer's special tokens, so its prompts are encoded with them parsed (`parses_special`), as
transformers does; what a user typed is inside the rendered text all the same (transformers' behaviour too).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scratchlm.data.templates import Message, Segment, check_messages
from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json
from scratchlm.interop.hf_tokenizer import token_text

# The tokenizer_config.json entries a template may refer to by name.
SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


@functools.lru_cache(maxsize=8)
def _compiled(source: str):
    """The template compiled once per source (a chat renders it at every turn, training at every reply)."""
    return _environment().from_string(source)


def _environment():
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ScratchLMError(f"the chat template refused the conversation: {message}")

    def tojson(
        value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None, sort_keys=False
    ):
        return json.dumps(
            value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


@dataclass(frozen=True)
class JinjaTemplate:
    """A Jinja chat template with the special tokens it may refer to."""

    source: str
    special: dict[str, str] = field(default_factory=dict)  # bos_token, eos_token, ... -> their strings
    name: str = "hf"
    parses_special: bool = True  # its markers are special tokens: encode prompts with them parsed

    @property
    def stop(self) -> tuple[str, ...]:
        """The end of an assistant turn: the tokenizer's end-of-sequence string (its id also stops)."""
        eos = self.special.get("eos_token")
        return (eos,) if eos else ()

    def render(self, messages: Sequence[Message], add_generation_prompt: bool) -> str:
        from jinja2 import TemplateError

        try:
            return _compiled(self.source).render(
                messages=[{k: v for k, v in m.items() if k != "input"} | _content(m) for m in messages],
                add_generation_prompt=add_generation_prompt,
                tools=None,
                documents=None,
                **self.special,
            )
        except TemplateError as exc:
            raise ScratchLMError(f"the chat template failed: {exc}") from None

    def generation_prompt(self, messages: Sequence[Message]) -> str:
        check_messages(messages, needs_reply=False)
        return self.render(messages, add_generation_prompt=True)

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        """(text, is_response) of a whole conversation: each assistant reply is what its conversation
        so far, rendered with the generation prompt, lacks from the conversation with the reply. A template
        that renders earlier turns differently once later ones exist cannot be split so: a clear error."""
        check_messages(messages, needs_reply=True)
        out: list[Segment] = []
        done = ""
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = self.render(messages[:i], add_generation_prompt=True)
            full = self.render(messages[: i + 1], add_generation_prompt=False)
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise ScratchLMError(
                    "this chat template renders earlier turns differently as the conversation grows: "
                    "it cannot mark the replies to learn"
                )
            out += [(prompt[len(done) :], False), (full[len(prompt) :], True)]
            done = full
        return [(text, is_response) for text, is_response in out if text]


def hf_chat_template(directory) -> JinjaTemplate | None:
    """A Hugging Face model directory's chat template with its special tokens, or None."""
    from pathlib import Path

    directory = Path(directory)
    config_path = directory / "tokenizer_config.json"
    config = read_json(config_path) if config_path.is_file() else {}
    jinja = directory / "chat_template.jinja"
    source = jinja.read_text(encoding="utf-8") if jinja.is_file() else config.get("chat_template")
    if isinstance(source, list):  # named templates: the default one
        source = {t.get("name"): t.get("template") for t in source if isinstance(t, dict)}.get("default")
    if not isinstance(source, str):
        return None
    special = {key: text for key in SPECIAL_KEYS if (text := token_text(config.get(key))) is not None}
    return JinjaTemplate(source, special)


def _content(message: Message) -> dict:
    """Alpaca's optional input joins the instruction, as scratchlm's own chat templates do."""
    extra = message.get("input") or ""
    return {"content": f"{message['content']}\n\n{extra}"} if extra else {}
