"""Stage 5: text generation. Pure logits-to-token functions, and the decoding loop over a model."""

from scratchlm.generate.generate import (
    generate,
    generate_text,
    stream_text,
    stream_tokens,
    text_to_token_ids,
    token_ids_to_text,
)

__all__ = [
    "generate",
    "generate_text",
    "stream_text",
    "stream_tokens",
    "text_to_token_ids",
    "token_ids_to_text",
]
