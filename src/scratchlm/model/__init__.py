"""Stages 3-5: embeddings, attention, the GPT model and its KV cache. Single-device and stateless:
no file I/O, no device placement, no state that outlives a forward call except in an explicit KVCache."""

from scratchlm.model.gpt import GPT
from scratchlm.model.kv_cache import KVCache

__all__ = ["GPT", "KVCache"]
