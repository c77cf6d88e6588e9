"""An explicit key/value cache for fast generation. It is pre-allocated, owns its position, and is passed
into `GPT.forward`; the model keeps no state between calls."""

from __future__ import annotations

import copy

import torch

from scratchlm.config import ModelConfig
from scratchlm.errors import ScratchLMError


class KVCache:
    """Keys and values of every layer for the tokens seen so far: `k[layer]` is (B, H, max_len, D).

    `update(layer, k, v)` writes new entries at `pos` and returns the keys/values up to them; `advance(n)`,
    called once per forward pass by the model, moves `pos` on.
    """

    def __init__(
        self,
        n_layers: int,
        batch_size: int,
        n_heads: int,
        head_dim: int,
        max_len: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        shape = (n_layers, batch_size, n_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_len = max_len
        self.pos = 0

    @classmethod
    def for_model(
        cls,
        cfg: ModelConfig,
        batch_size: int,
        max_len: int | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> KVCache:
        max_len = min(max_len or cfg.context_length, cfg.context_length)
        # Grouped-query attention caches its shared key/value heads only: n_heads / n_kv_heads times smaller.
        return cls(cfg.n_layers, batch_size, cfg.kv_heads, cfg.head_dim, max_len, dtype, device)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # k, v: (B, H, T, D) for the new tokens -> (B, H, pos + T, D) for all tokens so far.
        end = self.pos + k.shape[2]
        if end > self.max_len:
            raise ScratchLMError(f"KV cache is full: {end} positions needed, {self.max_len} allocated")
        self.k[layer, :, :, self.pos : end] = k
        self.v[layer, :, :, self.pos : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        self.pos += n

    def rows(self, rows: slice, pos: int) -> KVCache:
        """A cache over some batch rows of this one, writing at `pos`: its tensors are views, so what the
        model writes lands here. The serving engine hands each forward pass the rows it decodes."""
        part = copy.copy(self)
        part.k, part.v, part.pos = self.k[:, rows], self.v[:, rows], pos
        return part

    def reset(self) -> None:
        self.pos = 0
