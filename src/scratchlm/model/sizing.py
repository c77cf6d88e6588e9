"""How big a model is, from its config alone: parameters, memory, FLOPs per token. Pure arithmetic."""

from __future__ import annotations

from scratchlm.config import ModelConfig

BYTES_PER = {"float32": 4, "bfloat16": 2, "float16": 2}


def parameter_count(cfg: ModelConfig, tied: bool | None = None) -> int:
    """Parameters of `GPT(cfg)`; `tied` overrides cfg.tie_embeddings.

    >>> from scratchlm.config import gpt2_small
    >>> parameter_count(gpt2_small()), parameter_count(gpt2_small(), tied=False)
    (124412160, 163009536)
    """
    tied = cfg.tie_embeddings if tied is None else tied
    C, V, F = cfg.emb_dim, cfg.vocab_size, cfg.hidden_dim
    q, kv = cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    embeddings = V * C + (cfg.context_length * C if cfg.positions == "learned" else 0)
    attention = C * (q + 2 * kv) + ((q + 2 * kv) if cfg.qkv_bias else 0) + q * C + (C if cfg.bias else 0)
    n_in = 2 if cfg.mlp in ("swiglu", "geglu") else 1  # the gated MLPs expand twice (gate and up)
    feed_forward = n_in * (C * F + (F if cfg.bias else 0)) + F * C + (C if cfg.bias else 0)
    norm = 2 * C if cfg.norm == "layernorm" else C
    norms = 4 if cfg.norm_placement == "sandwich" else 2
    head = 0 if tied else V * C
    qk_norm = (2 * cfg.head_dim if cfg.qk_norm_scope == "head" else q + kv) if cfg.qk_norm else 0
    k = cfg.value_embeddings  # k tables of V x kv; two mixing weights in each of the 2k layers reading them
    value_embeddings = k * V * kv + 2 * 2 * k
    blocks = cfg.n_layers * (attention + feed_forward + norms * norm + qk_norm)
    return embeddings + value_embeddings + blocks + norm + head


def kv_cache_bytes(
    cfg: ModelConfig, tokens: int, batch_size: int = 1, dtype: str = "float32", window_only: bool = False
) -> int:
    """Bytes of the KV cache for `tokens` positions: keys and values of every layer's key/value heads.
    `window_only`: what a cache would need that kept only the window on sliding-window layers.

    >>> from scratchlm.config import gpt2_small
    >>> kv_cache_bytes(gpt2_small(), 1024) / 2**20  # MiB
    72.0
    """
    window = cfg.sliding_window or tokens
    kept = sum(min(tokens, window) if window_only and k == "sliding" else tokens for k in cfg.kinds)
    return 2 * batch_size * cfg.kv_heads * kept * cfg.head_dim * BYTES_PER[dtype]


def memory_bytes(cfg: ModelConfig, dtype: str = "float32", training: bool = False) -> int:
    """Bytes for the weights; with `training`, also gradients and AdamW's two moments (activations not
    included: they depend on batch size and context)."""
    weights = parameter_count(cfg) * BYTES_PER[dtype]
    return weights * 4 if training else weights


def flops_per_token(cfg: ModelConfig, training: bool = True) -> int:
    """Matmul FLOPs per token at full context (Kaplan et al. 2020 / PaLM appendix B): 2 per weight that
    multiplies (embedding lookups do not), plus attention's scores and weighted sums; x3 for the backward
    pass when training.

    >>> from scratchlm.config import gpt2_small
    >>> flops_per_token(gpt2_small(), training=False) / 1e6
    284.8128
    """
    C, L, T, F = cfg.emb_dim, cfg.n_layers, cfg.context_length, cfg.hidden_dim
    q, kv = cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    n_mlp = 3 if cfg.mlp in ("swiglu", "geglu") else 2  # matrices of C x F
    per_block = C * (q + 2 * kv) + q * C + n_mlp * C * F
    matmul_weights = L * per_block + cfg.vocab_size * C  # blocks + output head
    # q.k and weights.v over the keys a query sees (T, or the window on a sliding layer), every query head
    keys = sum(min(T, cfg.sliding_window or T) if kind == "sliding" else T for kind in cfg.kinds)
    forward = 2 * matmul_weights + 2 * 2 * keys * q
    return 3 * forward if training else forward
