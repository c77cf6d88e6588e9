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
from scratchlm.interop.hf_llama import layer_kinds, layered_rope, required, shape_settings


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
    kinds = layer_kinds(types)
    return ModelConfig(
        **shape_settings(hf, context=131_072, tied=True, head_dim=256),
        qkv_bias=False,
        qk_norm=True,
        norm="rmsnorm_offset",
        mlp="geglu",
        norm_placement="sandwich",
        emb_scale=True,
        attn_scalar=float(hf.get("query_pre_attn_scalar", 256)),
        # transformers' Gemma 3 never applies attn_logit_softcapping (Gemma 2 did; Gemma 3's configs set it
        # null): neither do we, so that the same weights give the same logits.
        attn_softcap=None,
        logit_softcap=hf.get("final_logit_softcapping"),
        sliding_window=hf.get("sliding_window", 4096) if "sliding" in kinds else None,
        layer_types=kinds,
        **gemma3_rope(hf),
    )
