"""Stage 5 building blocks: layer norm, GELU, the feed-forward network and the transformer block with its
two shortcut connections (pre-norm, as GPT-2); and the modern families' two swaps: RMSNorm for LayerNorm,
the gated SwiGLU network for the GELU one. `make_norm` and `make_feed_forward` pick by the config."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scratchlm.config import ModelConfig
from scratchlm.model.attention import MultiHeadAttention
from scratchlm.model.kv_cache import KVCache
from scratchlm.model.norms import LayerNorm, RMSNorm, make_norm

__all__ = ["GELU", "FeedForward", "GeGLU", "LayerNorm", "RMSNorm", "SwiGLU", "TransformerBlock", "make_norm"]


class GELU(nn.Module):
    """GELU, tanh approximation (GPT-2's "gelu_new"):
    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


class ReLUSquared(nn.Module):
    """relu(x)²: the activation of Primer (So et al. 2021) that the nanoGPT speedrun uses. As cheap as ReLU,
    smooth at zero from above, and sparse: a unit that is off passes nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


class FeedForward(nn.Module):
    """Expand to 4x the width (or ff_dim), GELU (or ReLU² with mlp "relu2"), project back."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg.emb_dim, cfg.hidden_dim, bias=cfg.bias),
            ReLUSquared() if cfg.mlp == "relu2" else GELU(),
            nn.Linear(cfg.hidden_dim, cfg.emb_dim, bias=cfg.bias),
        )

    @property
    def output(self) -> nn.Linear:
        """The projection back to the residual stream."""
        return self.layers[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SwiGLU(nn.Module):
    """The gated feed-forward network of Llama and its kin (Shazeer 2020): down(silu(gate(x)) * up(x)).
    Two expansions instead of one: `up` carries the content, `gate` (through SiLU) decides how much of
    each hidden unit passes. ff_dim is usually about 8/3 x emb_dim, so it costs what a 4x GELU one does."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(cfg.emb_dim, cfg.hidden_dim, bias=cfg.bias)
        self.up = nn.Linear(cfg.emb_dim, cfg.hidden_dim, bias=cfg.bias)
        self.down = nn.Linear(cfg.hidden_dim, cfg.emb_dim, bias=cfg.bias)

    @property
    def output(self) -> nn.Linear:
        """The projection back to the residual stream."""
        return self.down

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.activation(self.gate(x)) * self.up(x))


class GeGLU(SwiGLU):
    """The same gate through GELU (tanh approximation) instead of SiLU: Gemma's MLP."""

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


def make_feed_forward(cfg: ModelConfig) -> nn.Module:
    return {"swiglu": SwiGLU, "geglu": GeGLU}.get(cfg.mlp, FeedForward)(cfg)


class TransformerBlock(nn.Module):
    """x + dropout(attention(norm(x))), then x + dropout(feed_forward(norm(x))).

    "sandwich" norms (Gemma): each sublayer's output is normalised too before it joins the residual,
    x + dropout(post_norm(attention(norm(x)))), which keeps what each layer adds on one scale. "post"
    (Olmo 2): only that one, x + dropout(post_norm(attention(x)))."""

    def __init__(self, cfg: ModelConfig, value_embedding: bool = False) -> None:
        super().__init__()
        pre, post = cfg.norm_placement != "post", cfg.norm_placement != "pre"
        self.norm1 = make_norm(cfg) if pre else nn.Identity()
        self.att = MultiHeadAttention(cfg, value_embedding)
        self.norm2 = make_norm(cfg) if pre else nn.Identity()
        self.ff = make_feed_forward(cfg)
        self.drop_shortcut = nn.Dropout(cfg.dropout)
        self.post_norm1 = make_norm(cfg) if post else nn.Identity()
        self.post_norm2 = make_norm(cfg) if post else nn.Identity()

    @property
    def residual_outputs(self) -> tuple[nn.Linear, nn.Linear]:
        """The two projections whose outputs join the residual stream (GPT-2 scales their initialisation)."""
        return self.att.out_proj, self.ff.output

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        layer: int = 0,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        ve: torch.Tensor | None = None,
    ) -> torch.Tensor:
        attended = self.att(self.norm1(x), attn_mask, kv_cache, layer, rope, ve)
        x = x + self.drop_shortcut(self.post_norm1(attended))
        return x + self.drop_shortcut(self.post_norm2(self.ff(self.norm2(x))))
