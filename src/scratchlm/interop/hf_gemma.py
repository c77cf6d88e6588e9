"""Hugging Face Gemma 3 text checkpoints (`model_type` "gemma3_text": Gemma 3 270M and 1B, and the text part
of the larger ones saved alone) as a `ModelConfig`: Llama's skeleton with Gemma's choices.

- RMSNorm with the gain 1 + w, applied in fp32 (`norm: rmsnorm_offset`), four per block: before and after
  attention and the MLP (`norm_placement: sandwich`), and on each query and key head (`qk_norm`);
- the MLP gated by tanh-GELU (`mlp: geglu`); token embeddings times sqrt(hidden) (`emb_scale`);
- attention scores scaled by `query_pre_attn_scalar ** -0.5` (`attn_scalar`), optional soft-caps;
- five sliding-window layers to one full one (`layer_types`, `sliding_window`), the sliding ones with their
  own rope base (10k; the full ones 1M, with linear scaling on the larger models).

Both config dialects: transformers 5 writes `rope_parameters` per layer type ({"full_attention": ...,
"sliding_attention": ...}); transformers 4 wrote `rope_theta`, `rope_local_base_freq` and `rope_scaling`
(which applies to the full layers). The tensors load through `hf_llama` (same names, four norms a block).
"""

from __future__ import annotations

from typing import Any

from scratchlm.config import ModelConfig
from scratchlm.errors import ScratchLMError
from scratchlm.interop.hf_llama import LAYER_TYPES, layered_rope, required


def gemma3_rope(hf: dict[str, Any]) -> dict[str, Any]:
    """Our rope_* fields (the full layers') and rope_local_theta (the sliding layers'), from either
    dialect; transformers 4's sliding layers turn at `rope_local_base_freq`."""
    return layered_rope(hf, 1_000_000.0, float(hf.get("rope_local_base_freq", 10_000.0)))


def config_from_hf_gemma3(hf: dict[str, Any]) -> ModelConfig:
    """Our ModelConfig for a gemma3_text config.json; anything we would run differently is refused."""
    activation = hf.get("hidden_activation") or hf.get("hidden_act") or "gelu_pytorch_tanh"
    if activation != "gelu_pytorch_tanh":
        raise ScratchLMError(
            f"config.json: hidden_activation {activation!r} is not supported (tanh GELU only)"
        )
    if hf.get("attention_bias"):
        raise ScratchLMError("config.json: attention_bias=true is not supported for Gemma 3")
    if hf.get("use_bidirectional_attention"):
        raise ScratchLMError("config.json: use_bidirectional_attention (an encoder) is not supported")
    layers = required(hf, "num_hidden_layers")
    types = hf.get("layer_types")
    if types is None:  # transformers 4: every `sliding_window_pattern`-th layer is full, the rest slide
        pattern = int(hf.get("sliding_window_pattern", 6))
        types = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(layers)]
    unknown = sorted(set(types) - set(LAYER_TYPES))
    if unknown:
        raise ScratchLMError(f"config.json: layer_types {unknown} are not supported")
    heads = required(hf, "num_attention_heads")
    head_dim = hf.get("head_dim", 256)
    hidden = required(hf, "hidden_size")
    return ModelConfig(
        vocab_size=required(hf, "vocab_size"),
        context_length=hf.get("max_position_embeddings", 131_072),
        emb_dim=hidden,
        n_heads=heads,
        n_kv_heads=hf.get("num_key_value_heads") or heads,
        n_layers=layers,
        head_size=head_dim if head_dim * heads != hidden else None,
        ff_dim=required(hf, "intermediate_size"),
        dropout=float(hf.get("attention_dropout") or 0.0),
        qkv_bias=False,
        qk_norm=True,
        bias=False,
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        positions="rope",
        norm="rmsnorm_offset",
        mlp="geglu",
        norm_placement="sandwich",
        emb_scale=True,
        attn_scalar=float(hf.get("query_pre_attn_scalar", 256)),
        # transformers' Gemma 3 never applies attn_logit_softcapping (Gemma 2 did; Gemma 3's configs set it
        # null): neither do we, so that the same weights give the same logits.
        attn_softcap=None,
        logit_softcap=hf.get("final_logit_softcapping"),
        sliding_window=hf.get("sliding_window", 4096) if "sliding_attention" in types else None,
        layer_types=tuple(LAYER_TYPES[t] for t in types),
        **gemma3_rope(hf),
    )
