"""Prompt templates: how an instruction (or a conversation) becomes one text, and which parts of that text
the model learns to write.

A template turns a conversation, a list of messages `{"role": "system"|"user"|"assistant", "content": str}`,
into segments `(text, is_response)`: the assistant's replies are responses, everything else is prompt. An
Alpaca record is the conversation [user(instruction, input), assistant(output)]; the user message carries
Alpaca's optional context under the extra key "input", which a chat template appends to the instruction.

Markers such as `<|im_start|>` are plain text here: the byte-level BPEs scratchlm trains or loads have no
ids for them (GPT-2's vocabulary has only `<|endoftext|>`), so they become a few ordinary tokens, exactly as
`encode_ordinary` spells them at generation time. A consequence: a user who types `<|im_end|>` writes the
same tokens a template would. Pure, apart from `save_template`/`load_template`, which keep the template's
name in `chat_template.json` beside a model's weights so generation (and chat) wrap prompts the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json

if TYPE_CHECKING:
    from scratchlm.data.jinja_template import JinjaTemplate

Message = dict  # {"role": ..., "content": ..., and for an Alpaca user message optionally "input": ...}
Segment = tuple[str, bool]  # (text, is_response)
ROLES = ("system", "user", "assistant")
TEMPLATE_FILE = "chat_template.json"
TEMPLATE_FORMAT = "scratchlm-chat-template"

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)


def format_input(instruction: str, input: str = "", preamble: str = ALPACA_PREAMBLE) -> str:
    """The book's `format_input` (chapter 7): the Alpaca prompt without its response header.

    >>> format_input("Name a fruit.").endswith("request.\\n\\n### Instruction:\\nName a fruit.")
    True
    >>> format_input("Correct it.", "freind").endswith("### Input:\\nfreind")
    True
    """
    text = f"{preamble}\n\n### Instruction:\n{instruction}"
    return text + f"\n\n### Input:\n{input}" if input else text


def user_text(message: Message) -> str:
    """A user message's text for templates without an input section: the instruction, then the input."""
    extra = message.get("input") or ""
    return f"{message['content']}\n\n{extra}" if extra else message["content"]


def alpaca_messages(instruction: str, input: str = "", output: str | None = None) -> list[Message]:
    """The conversation of one Alpaca record (without the reply when `output` is None)."""
    messages: list[Message] = [{"role": "user", "content": instruction, "input": input}]
    if output is not None:
        messages.append({"role": "assistant", "content": output})
    return messages


@dataclass(frozen=True)
class AlpacaTemplate:
    """The book's Alpaca format: preamble, `### Instruction:`, `### Input:` when the input is non-empty, then
    `### Response:` and the output. One instruction and one reply; a system message replaces the preamble."""

    name: str = "alpaca"
    # A model that starts another section has finished its answer (the end-of-text token is the real stop).
    stop: tuple[str, ...] = ("\n\n### Instruction:", "\n\n### Response:")

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        prompt_messages, reply = _split_reply(messages)
        return [(self.generation_prompt(prompt_messages), False), (reply["content"], True)]

    def generation_prompt(self, messages: Sequence[Message]) -> str:
        check_messages(messages, needs_reply=False)
        system = [m for m in messages if m["role"] == "system"]
        users = [m for m in messages if m["role"] == "user"]
        if len(users) != 1 or len(system) > 1 or any(m["role"] == "assistant" for m in messages):
            raise ScratchLMError(
                "the alpaca template holds one instruction and one response: use chatml for conversations"
            )
        preamble = system[0]["content"] if system else ALPACA_PREAMBLE
        user = users[0]
        return format_input(user["content"], user.get("input") or "", preamble) + "\n\n### Response:\n"


@dataclass(frozen=True)
class RoleTemplate:
    """Each message between a role header and an end marker, as ChatML does:
    `<|im_start|>user\\n{content}<|im_end|>\\n`. The assistant learns its replies and the end marker after
    them (that is how it learns to stop); a generation prompt ends with the assistant's header."""

    name: str
    header: str  # with "{role}"
    footer: str

    @property
    def stop(self) -> tuple[str, ...]:
        return (self.footer.strip(),)

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        check_messages(messages, needs_reply=True)
        out: list[Segment] = []
        for m in messages:
            header = self.header.format(role=m["role"])
            if m["role"] == "assistant":
                out += [(header, False), (m["content"] + self.footer, True)]
            else:
                content = user_text(m) if m["role"] == "user" else m["content"]
                out.append((header + content + self.footer, False))
        return _merge(out)

    def generation_prompt(self, messages: Sequence[Message]) -> str:
        check_messages(messages, needs_reply=False)
        text = "".join(text for text, _ in self.segments([*messages, {"role": "assistant", "content": ""}]))
        return text[: -len(self.footer)]


Template = AlpacaTemplate | RoleTemplate

TEMPLATES: dict[str, Template] = {
    "alpaca": AlpacaTemplate(),
    # ChatML (OpenAI; litgpt's `ChatML`, Qwen's chat template)
    "chatml": RoleTemplate("chatml", header="<|im_start|>{role}\n", footer="<|im_end|>\n"),
    # Phi-3's format: the role as its own marker, `<|end|>` closing each message
    "phi3": RoleTemplate("phi3", header="<|{role}|>\n", footer="<|end|>\n"),
}


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ScratchLMError(f"unknown template {name!r}; choose from {', '.join(TEMPLATES)}") from None


def check_messages(messages: Sequence[Message], needs_reply: bool) -> None:
    """A clear error for a conversation a template cannot render: unknown roles, non-text content, no user
    message, or (`needs_reply`) no assistant reply at the end."""
    if not messages:
        raise ScratchLMError("a conversation needs at least one message")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ScratchLMError(
                f"message {i}: expected {{'role': one of {ROLES}, 'content': text}}, got {str(m)[:80]}"
            )
    if not any(m["role"] == "user" for m in messages):
        raise ScratchLMError("a conversation needs a user message")
    if needs_reply and messages[-1]["role"] != "assistant":
        raise ScratchLMError("a training conversation must end with the assistant's reply")


def _split_reply(messages: Sequence[Message]) -> tuple[list[Message], Message]:
    check_messages(messages, needs_reply=True)
    return list(messages[:-1]), messages[-1]


def _merge(segments: list[Segment]) -> list[Segment]:
    """Join neighbours of the same kind, so a conversation alternates prompt and response segments."""
    merged: list[Segment] = []
    for text, is_response in segments:
        if merged and merged[-1][1] == is_response:
            merged[-1] = (merged[-1][0] + text, is_response)
        elif text:
            merged.append((text, is_response))
    return merged


# ---- the template beside a model -------------------------------------------------------------------------


def save_template(template: Template, model_dir: str | os.PathLike) -> Path:
    """Write `chat_template.json` (the template's name and stop strings) into a model directory."""
    return write_json(
        Path(model_dir) / TEMPLATE_FILE,
        {"format": TEMPLATE_FORMAT, "version": 1, "name": template.name, "stop": list(template.stop)},
    )


def load_template(model_dir: str | os.PathLike) -> Template | JinjaTemplate | None:
    """The template saved beside a model: scratchlm's `chat_template.json`, else a Hugging Face model's own
    Jinja template (`chat_template.jinja` or tokenizer_config.json's `chat_template`); None without one."""
    from scratchlm.data.jinja_template import hf_chat_template

    path = Path(model_dir) / TEMPLATE_FILE
    data = read_json(path) if path.is_file() else None
    if isinstance(data, dict) and data.get("format") == TEMPLATE_FORMAT:
        return get_template(str(data.get("name")))
    hf = hf_chat_template(model_dir)
    if hf is not None:
        return hf
    if data is not None:
        raise ScratchLMError(f"{path}: not a scratchlm chat template file")
    return None


def encode_prompt(tokenizer, text: str, template: Template | JinjaTemplate | None) -> list[int]:
    """Ids of a prompt a template rendered. scratchlm's own templates write plain text (their markers are
    ordinary tokens, as the model learned them); a model's own Jinja template writes its tokenizer's special
    tokens, which become their ids, as transformers' `apply_chat_template` encodes them."""
    if getattr(template, "parses_special", False):
        return tokenizer.encode(text, allowed_special="all")
    return tokenizer.encode_ordinary(text)
