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
    C, V = cfg.emb_dim, cfg.vocab_size
    embeddings = V * C + cfg.context_length * C
    attention = C * 3 * C + (3 * C if cfg.qkv_bias else 0) + C * C + C
    feed_forward = C * 4 * C + 4 * C + 4 * C * C + C
    norms = 2 * 2 * C
    head = 0 if tied else V * C
    return embeddings + cfg.n_layers * (attention + feed_forward + norms) + 2 * C + head


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
    C, L, T = cfg.emb_dim, cfg.n_layers, cfg.context_length
    matmul_weights = L * (3 * C * C + C * C + 8 * C * C) + cfg.vocab_size * C  # blocks + output head
    forward = 2 * matmul_weights + L * 2 * 2 * T * C  # q.k and weights.v over T keys
    return 3 * forward if training else forward
