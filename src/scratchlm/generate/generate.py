"""The decoding loop: prompts in, one token per step out, with or without a KV cache.

One loop (`_decode`) serves everything: the book's `generate` on a tensor, batched prompts of different
lengths (left padding), a streaming token iterator, and text in/text out with stop strings. With the
cache, each step feeds only the new token; without it, each step re-reads the last `context_length`
tokens, as the book does. Both give the same tokens. Knows nothing about files or devices beyond the
model's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from scratchlm.config import GenerateConfig
from scratchlm.errors import ScratchLMError
from scratchlm.generate.sampling import apply_repetition_penalty, sample_next
from scratchlm.generate.text_stream import TextStream
from scratchlm.model.gpt import GPT
from scratchlm.model.kv_cache import KVCache
from scratchlm.tokenizer.protocol import TokenizerLike


def _config(config: GenerateConfig | None, overrides: dict[str, Any]) -> GenerateConfig:
    config = config or GenerateConfig()
    return config.replace(**overrides) if overrides else config


def _left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device):
    """(B, T) ids and a (B, T) real-token mask (None when no row needs padding)."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ScratchLMError("every prompt needs at least one token")
    T = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), T), dtype=torch.bool)
    for row, p in enumerate(prompts):
        ids[row, T - len(p) :] = torch.as_tensor(list(p), dtype=torch.long)
        mask[row, T - len(p) :] = True
    padded = not bool(mask.all())
    return ids.to(device), (mask.to(device) if padded else None)


def _positions(mask: torch.Tensor | None) -> torch.Tensor | None:
    """Positions count real tokens only, so a left-padded prompt sees the positions it would see alone."""
    return None if mask is None else (mask.long().cumsum(1) - 1).clamp(min=0)


@torch.inference_mode()
def _decode(
    model: GPT, prompts: Sequence[Sequence[int]], config: GenerateConfig, eos_id: int | None
) -> Iterator[torch.Tensor]:
    """Yield the next token of every row, (B,), until max_new_tokens or every row has produced EOS
    (rows that finished early keep producing EOS)."""
    device = next(model.parameters()).device
    L = model.cfg.context_length
    ids, mask = _left_pad(prompts, eos_id if eos_id is not None else 0, device)
    if ids.shape[1] > L:  # keep the most recent context, as the book's loop does
        ids = ids[:, -L:]
        mask = None if mask is None or bool(mask[:, -L:].all()) else mask[:, -L:]
    B = ids.shape[0]
    stop_at_eos = config.stop_at_eos and eos_id is not None
    generator = None
    if config.seed is not None:
        generator = torch.Generator(device=device).manual_seed(config.seed)
    # Tokens seen so far, for the repetition penalty; padding is replaced by a real token of its row.
    seen = ids if mask is None else torch.where(mask, ids, ids[:, -1:])
    finished = torch.zeros(B, dtype=torch.bool, device=device)

    cache = None
    if config.use_cache:
        dtype = next(model.parameters()).dtype
        cache = KVCache.for_model(model.cfg, B, ids.shape[1] + config.max_new_tokens, dtype, device)
        logits = model(ids, cache, padding_mask=mask, position_ids=_positions(mask), last_only=True)[:, -1]
    else:
        logits = model(ids, padding_mask=mask, position_ids=_positions(mask), last_only=True)[:, -1]

    for step in range(config.max_new_tokens):
        logits = apply_repetition_penalty(logits, seen, config.repetition_penalty)
        token = sample_next(logits, config.temperature, config.top_k, config.top_p, generator)
        if stop_at_eos:
            token = torch.where(finished, eos_id, token)
            finished |= token == eos_id
        yield token
        if step + 1 == config.max_new_tokens or (stop_at_eos and bool(finished.all())):
            return
        ids = torch.cat([ids, token[:, None]], dim=1)
        if config.repetition_penalty != 1.0:
            seen = torch.cat([seen, token[:, None]], dim=1)
        if mask is not None:
            mask = torch.cat([mask, torch.ones((B, 1), dtype=torch.bool, device=device)], dim=1)
        if cache is not None and cache.pos < cache.max_len:
            positions = None if mask is None else _positions(mask)[:, -1:]
            logits = model(token[:, None], cache, padding_mask=mask, position_ids=positions, last_only=True)[
                :, -1
            ]
        else:
            # No cache, or the context is full: re-read the last L tokens (absolute positions cannot slide
            # inside a cache, so past the context window the cached path continues exactly like this).
            cache = None
            window = ids[:, -L:]
            window_mask = None if mask is None else mask[:, -L:]
            logits = model(
                window, padding_mask=window_mask, position_ids=_positions(window_mask), last_only=True
            )[:, -1]


def generate(
    model: GPT,
    token_ids: torch.Tensor,
    config: GenerateConfig | None = None,
    *,
    eos_id: int | None = None,
    **overrides: Any,
) -> torch.Tensor:
    """The book's `generate`: (B, T) ids -> (B, T + n) ids. Overrides are GenerateConfig fields, e.g.
    `generate(model, ids, max_new_tokens=20, temperature=0.8, top_k=50, seed=1)`."""
    config = _config(config, overrides)
    if token_ids.dim() != 2:
        raise ScratchLMError(f"token_ids must be (batch, tokens), got shape {tuple(token_ids.shape)}")
    steps = list(_decode(model, token_ids.tolist(), config, eos_id))
    if not steps:
        return token_ids
    new = torch.stack(steps, dim=1).to(token_ids.device)
    return torch.cat([token_ids, new], dim=1)


def generate_batch(
    model: GPT,
    prompts: Sequence[Sequence[int]],
    config: GenerateConfig | None = None,
    *,
    eos_id: int | None = None,
    **overrides: Any,
) -> list[list[int]]:
    """Prompts of any lengths together (left padding): the new tokens of each, cut after its EOS."""
    config = _config(config, overrides)
    steps = list(_decode(model, prompts, config, eos_id))
    rows = torch.stack(steps, dim=1).tolist() if steps else [[] for _ in prompts]
    if eos_id is not None and config.stop_at_eos:
        rows = [row[: row.index(eos_id) + 1] if eos_id in row else row for row in rows]
    return rows


def stream_tokens(
    model: GPT,
    prompt: Sequence[int],
    config: GenerateConfig | None = None,
    *,
    eos_id: int | None = None,
    **overrides: Any,
) -> Iterator[int]:
    """New token ids of one prompt, one at a time, as they are produced (EOS included, then stop)."""
    for token in _decode(model, [prompt], _config(config, overrides), eos_id):
        yield int(token[0])


def stream_text(
    model: GPT,
    tokenizer: TokenizerLike,
    prompt: str | list[int],
    config: GenerateConfig | None = None,
    **overrides: Any,
) -> Iterator[str]:
    """New text of one prompt as it is produced. Stops at EOS (not shown) or at a stop string (cut
    before it); text that could be the start of a stop string is held back until it is not.
    A text prompt is encoded as plain text (a special-token string in it is not a special token); give
    ids to say otherwise (a chat template's prompt: `scratchlm.data.templates.encode_prompt`)."""
    config = _config(config, overrides)
    eos_id = tokenizer.eot_id
    stream = TextStream(tokenizer, config.stop)
    ids = tokenizer.encode_ordinary(prompt) if isinstance(prompt, str) else list(prompt)
    for token in stream_tokens(model, ids, config, eos_id=eos_id):
        if config.stop_at_eos and token == eos_id:
            break
        if piece := stream.add(token):
            yield piece
        if stream.stopped:
            return
    if tail := stream.flush():
        yield tail


def generate_text(
    model: GPT, tokenizer: TokenizerLike, prompt: str, config: GenerateConfig | None = None, **overrides: Any
) -> str:
    """The new text for one prompt (without the prompt)."""
    return "".join(stream_text(model, tokenizer, prompt, config, **overrides))


def text_to_token_ids(text: str, tokenizer: TokenizerLike) -> torch.Tensor:
    """The book's helper: text -> (1, T) ids, `<|endoftext|>` allowed."""
    kwargs = {"allowed_special": {"<|endoftext|>"}} if tokenizer.eot_id is not None else {}
    return torch.tensor(tokenizer.encode(text, **kwargs)).unsqueeze(0)


def token_ids_to_text(token_ids: torch.Tensor, tokenizer: TokenizerLike) -> str:
    """The book's helper: (1, T) or (T,) ids -> text."""
    return tokenizer.decode(token_ids.squeeze(0).tolist())
