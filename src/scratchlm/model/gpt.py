"""Stage 5: the GPT model. Embeddings -> transformer blocks -> final norm -> linear head to vocabulary logits.

Single-device and stateless: the only state that outlives `forward` lives in an explicit `KVCache`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scratchlm.config import ModelConfig
from scratchlm.errors import ScratchLMError
from scratchlm.model.attention import MultiHeadAttention
from scratchlm.model.blocks import LayerNorm, RMSNorm, TransformerBlock, make_norm
from scratchlm.model.embeddings import Embeddings
from scratchlm.model.kv_cache import KVCache
from scratchlm.model.rope import inverse_frequencies, local_inverse_frequencies, rope_scale, rotary_angles


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig, init: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.emb = Embeddings(cfg)
        # Value embeddings (cfg.value_embeddings tables, each read by two layers: cfg.value_table)
        self.value_embs = nn.ModuleList(
            nn.Embedding(cfg.vocab_size, cfg.kv_heads * cfg.head_dim) for _ in range(cfg.value_embeddings)
        )
        self.trf_blocks = nn.ModuleList(
            TransformerBlock(cfg, cfg.value_table(layer) is not None) for layer in range(cfg.n_layers)
        )
        self.final_norm = make_norm(cfg)
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)
        self.reset_rope()
        if cfg.tie_embeddings:
            self.out_head.weight = self.emb.tok_emb.weight
        if init:
            self.init_weights()

    def reset_rope(self) -> None:
        """(Re)compute the rotary frequencies in fp32 (after a cast to bf16, or a build on the meta device):
        constants of the config, buffers that are neither weights nor saved. Sliding layers with their own
        base (Gemma 3) get `inv_freq_local`."""
        if self.cfg.positions != "rope":
            return
        device = self.emb.tok_emb.weight.device
        self.register_buffer("inv_freq", inverse_frequencies(self.cfg).to(device), persistent=False)
        if self.cfg.rope_local_theta is not None:
            local = local_inverse_frequencies(self.cfg).to(device)
            self.register_buffer("inv_freq_local", local, persistent=False)

    @torch.no_grad()
    def init_weights(self, seed: int | None = None) -> None:
        """GPT-2's initialisation (Radford et al. 2019; nanoGPT's reading of it):

        - every Linear weight and both embeddings: normal(0, 0.02); Linear biases: 0
        - the two projections that write into the residual stream (attention `out_proj`, the feed-forward's
          second Linear): normal(0, 0.02 / sqrt(2 * n_layers)), so the residual's variance does not grow
          with depth
        - LayerNorm: scale 1, shift 0; RMSNorm: gain 1 (scale 1, or 0 where the gain is 1 + scale)
        - the output head is the token embedding when tied, else normal(0, 0.02)
        - with `zero_init_residual` (the speedrun's choice) those two projections start at zero instead:
          every block starts as the identity and learns what to add
        - value embeddings: normal(0, 0.02) like the token embedding; their two mixing weights 0.5 each
        """
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        std = 0.02
        residual_std = std / math.sqrt(2 * self.cfg.n_layers)

        def normal_(t: torch.Tensor, s: float) -> None:
            t.copy_(torch.randn(t.shape, generator=generator, dtype=t.dtype) * s)

        residual = {id(linear) for block in self.trf_blocks for linear in block.residual_outputs}
        for module in self.modules():
            if isinstance(module, nn.Linear):
                if module is self.out_head and self.cfg.tie_embeddings:
                    continue
                if id(module) in residual and self.cfg.zero_init_residual:
                    module.weight.zero_()
                else:
                    normal_(module.weight, residual_std if id(module) in residual else std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                normal_(module.weight, std)
            elif isinstance(module, LayerNorm):
                module.scale.fill_(1.0)
                module.shift.zero_()
            elif isinstance(module, RMSNorm):
                module.scale.fill_(1.0 - module.offset)
            elif isinstance(module, MultiHeadAttention) and module.ve_mix is not None:
                module.ve_mix.fill_(0.5)

    def forward(
        self,
        token_ids: torch.Tensor,
        kv_cache: KVCache | None = None,
        padding_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """token_ids (B, T) -> logits (B, T, vocab_size), or (B, 1, vocab_size) with `last_only`
        (generation needs only the last position; the head is the largest matmul of a small model).

        kv_cache: keys/values of earlier tokens; this call appends T positions to it.
        padding_mask: (B, T_keys) bool, True for real tokens, for left-padded batches (T_keys counts the
            cached tokens too). position_ids: (B, T) positions; default: continue from the cache's position.
        """
        T = token_ids.shape[1]
        start = kv_cache.pos if kv_cache is not None else 0
        if start + T > self.cfg.context_length:
            raise ScratchLMError(
                f"sequence of {start + T} tokens is longer than the context length {self.cfg.context_length}"
            )
        if position_ids is None:
            position_ids = torch.arange(start, start + T, device=token_ids.device).unsqueeze(0)
        cfg, kinds = self.cfg, self.cfg.kinds
        masks = {
            kind: attention_mask(
                start, T, padding_mask, token_ids.device, cfg.sliding_window if kind == "sliding" else None
            )
            for kind in set(kinds)
        }
        ropes = {kind: None for kind in masks}
        if cfg.positions == "rope":  # one set of angles, and the sliding layers' own where they turn apart
            angles = rotary_angles(self.inv_freq, position_ids, rope_scale(cfg))
            ropes = {kind: angles for kind in masks}
            if "sliding" in ropes and cfg.rope_local_theta is not None:
                ropes["sliding"] = rotary_angles(self.inv_freq_local, position_ids)
        x = self.emb(token_ids, position_ids)
        ves = [table(token_ids) for table in self.value_embs]
        for layer, (block, kind) in enumerate(zip(self.trf_blocks, kinds)):
            table = cfg.value_table(layer)
            ve = ves[table] if table is not None else None
            x = block(x, masks[kind], kv_cache, layer, ropes[kind], ve)
        if kv_cache is not None:
            kv_cache.advance(T)
        if last_only:
            x = x[:, -1:]
        logits = self.out_head(self.final_norm(x))
        if cfg.logit_softcap is not None:  # squashed into (-cap, cap) (Gemma 2)
            logits = cfg.logit_softcap * torch.tanh(logits / cfg.logit_softcap)
        return logits

    def num_parameters(self) -> int:
        """Parameters actually stored (a tied head is counted once)."""
        return sum(p.numel() for p in self.parameters())


def attention_mask(
    start: int,
    T: int,
    padding_mask: torch.Tensor | None,
    device: torch.device,
    window: int | None = None,
) -> torch.Tensor | None:
    """The boolean attention mask (B or 1, 1, T, start + T), or None when plain causal attention will do.

    Query i sits at position start + i and may attend to keys 0..start + i that are not padding, and with
    a sliding `window` only to those less than `window` positions back. A padded query would then see no key
    at all (its softmax would be NaN), so it may always see itself; its output is never used.

    Distances are counted in slots of the sequence (the cache's positions): a left-padded row's tokens are
    contiguous, so they are the distances between its tokens, as if the row were alone.
    """
    within = window is None or start + T <= window  # no key is ever out of the window
    if padding_mask is None and within and (start == 0 or T == 1):
        return None
    keys = torch.arange(start + T, device=device)
    queries = torch.arange(start, start + T, device=device)
    causal = keys[None, :] <= queries[:, None]  # (T, T_keys)
    if window is not None:
        causal &= queries[:, None] - keys[None, :] < window
    if padding_mask is None:
        return causal[None, None]
    mask = causal[None] & padding_mask[:, None, :]  # (B, T, T_keys)
    mask |= keys[None, None, :] == queries[None, :, None]
    return mask[:, None]
