"""Hugging Face Olmo 2 and Olmo 3 checkpoints (`model_type` "olmo2", "olmo3") as a `ModelConfig`: Llama's
skeleton (rotary positions, RMSNorm, SwiGLU, no biases, an untied head by default) with two changes.

- Post-norm (`norm_placement: post`): each sublayer's output is normalised before it joins the residual,
  x + norm(attention(x)), and nothing normalises its input;
- QK-norm over the whole query and key projections (`qk_norm_scope: projection`), before they are split into
  heads: one RMSNorm of n_heads x head_dim for the queries, one of n_kv_heads x head_dim for the keys.

Olmo 3 adds sliding-window attention on three layers of four (`layer_types`, `sliding_window` 4096). Both
config dialects are read (transformers 5: `rope_parameters` per layer type for Olmo 3).
"""

from __future__ import annotations

from typing import Any

from scratchlm.config import ModelConfig
from scratchlm.errors import ScratchLMError
from scratchlm.interop.hf_llama import layer_kinds, layered_rope, required, rope_settings, shape_settings


def config_from_hf_olmo(hf: dict[str, Any]) -> ModelConfig:
    """Our ModelConfig for an olmo2 or olmo3 config.json; anything we would run differently is refused."""
    olmo3 = hf.get("model_type") == "olmo3"
    activation = hf.get("hidden_act", "silu")
    if activation != "silu":
        raise ScratchLMError(f"config.json: hidden_act {activation!r} is not supported (SwiGLU: silu only)")
    if hf.get("attention_bias"):
        raise ScratchLMError("config.json: attention_bias=true is not supported for Olmo")
    layers = required(hf, "num_hidden_layers")
    window, types = None, ["full_attention"] * layers
    if olmo3:
        window = hf.get("sliding_window", 4096)
        types = hf.get("layer_types") or [
            "sliding_attention" if (i + 1) % 4 else "full_attention" for i in range(layers)
        ]
    kinds = layer_kinds(types)
    if window is None and "sliding" in kinds:
        raise ScratchLMError("config.json: sliding layers without a sliding_window")
    theta = float(hf.get("rope_theta", 500_000.0 if olmo3 else 10_000.0))
    rope = layered_rope(hf, theta, theta) if olmo3 else rope_settings(hf)
    if olmo3 and rope["rope_type"] == "default" and rope["rope_local_theta"] == rope["rope_theta"]:
        rope["rope_local_theta"] = None  # every layer turns alike
    return ModelConfig(
        **shape_settings(hf, context=4096, tied=False),
        qkv_bias=False,
        qk_norm=True,
        qk_norm_scope="projection",
        norm="rmsnorm",
        mlp="swiglu",
        norm_placement="post",
        sliding_window=window if "sliding" in kinds else None,
        layer_types=kinds if "sliding" in kinds else None,
        **rope,
    )
