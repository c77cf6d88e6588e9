"""One conversation renderer for `scratchlm chat` and `scratchlm serve`: the same messages become the same
prompt and the same stop strings, whichever way a user talks to the model.

- A model with a chat template (scratchlm's alpaca/chatml/phi3, or a Hugging Face model's own Jinja
  template) gets the template's generation prompt and its stop strings.
- The Alpaca format holds one instruction: the conversation's latest user message (with its system message,
  which replaces the preamble) is what the model answers.
- A base model gets a plain transcript it can continue (`User: …\\nAssistant:`); a line that starts another
  speaker's turn ends the reply.
- OpenAI's `developer` role is the system role.
"""

from __future__ import annotations

from collections.abc import Sequence

# A base model that starts another speaker's line has finished the assistant's turn.
TRANSCRIPT_STOPS = ("\nUser:", "\nSystem:")


def render_conversation(messages: Sequence[dict], template) -> tuple[str, tuple[str, ...]]:
    """The prompt text that asks the model for the assistant's next reply to `messages`, and the stop
    strings that end that reply. Raises ScratchLMError (from the template) for a conversation the template
    cannot render."""
    messages = [{**m, "role": "system" if m["role"] == "developer" else m["role"]} for m in messages]
    if template is None:
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages)
        return text + "Assistant:", TRANSCRIPT_STOPS
    if template.name == "alpaca":
        system = [m for m in messages if m["role"] == "system"][-1:]
        users = [m for m in messages if m["role"] == "user"][-1:]
        messages = system + users if users else messages
    return template.generation_prompt(messages), tuple(template.stop)
