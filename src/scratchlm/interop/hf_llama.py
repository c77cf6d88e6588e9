"""Hugging Face checkpoints of the Llama family: `model_type` "llama" (SmolLM2 and TinyLlama are too),
"mistral" (a sliding window on every layer, or none), "qwen2" (Qwen2.5: biases on q, k and v), "qwen3"
(per-head QK-norm, a head size apart from hidden / heads), "gemma3_text" (its config in `hf_gemma.py`)
and "olmo2"/"olmo3" (`hf_olmo.py`). Their `config.json` becomes a `ModelConfig` with the modern choices
(rotary positions, RMSNorm, SwiGLU, grouped-query attention, no other biases), their tensors our names.

Both dialects of config.json are read: transformers 4 writes `rope_theta` and `rope_scaling`, transformers 5
a `rope_parameters` dict. Tying of the output head comes from `tie_word_embeddings` (Llama's default is
untied), never from whether `lm_head.weight` happens to be in the files. Anything we would run differently
(an MoE, Qwen's per-layer windows, another activation, biases where we have none, an unknown rope type) is
refused with its name, and so is a missing, unexpected or mis-shaped tensor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from scratchlm.config import ROPE_TYPES, ModelConfig
from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json
from scratchlm.interop.hf import load_exact, read_hf_weights
from scratchlm.model.gpt import GPT

# gemma3_text: see hf_gemma.py; olmo2 and olmo3: hf_olmo.py
MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma3_text", "olmo2", "olmo3")

# HF's per-block names -> ours (q/k/v are concatenated into our fused `qkv`).
BLOCK_KEYS = {
    "input_layernorm.weight": "norm1.scale",
    "self_attn.o_proj.weight": "att.out_proj.weight",
    "post_attention_layernorm.weight": "norm2.scale",
    "mlp.gate_proj.weight": "ff.gate.weight",
    "mlp.up_proj.weight": "ff.up.weight",
    "mlp.down_proj.weight": "ff.down.weight",
    "self_attn.q_norm.weight": "att.q_norm.scale",  # Qwen3
    "self_attn.k_norm.weight": "att.k_norm.scale",
}
# Gemma's four norms a block: its post_attention_layernorm follows attention (Llama's precedes the MLP).
SANDWICH_KEYS = {
    **BLOCK_KEYS,
    "post_attention_layernorm.weight": "post_norm1.scale",
    "pre_feedforward_layernorm.weight": "norm2.scale",
    "post_feedforward_layernorm.weight": "post_norm2.scale",
}
# Olmo's two norms a block are on the sublayers' outputs.
POST_KEYS = {
    **{k: v for k, v in BLOCK_KEYS.items() if "layernorm" not in k},
    "post_attention_layernorm.weight": "post_norm1.scale",
    "post_feedforward_layernorm.weight": "post_norm2.scale",
}
QKV = ("q_proj", "k_proj", "v_proj")
IGNORED = ("rotary_emb.inv_freq",)  # a buffer some old checkpoints saved: a constant of the config
# Config keys that mean a model we do not build (each checked for a value that turns it on).
UNSUPPORTED = {
    "num_local_experts": "mixture-of-experts layers",
    "num_experts": "mixture-of-experts layers",
    "n_routed_experts": "mixture-of-experts layers",
    "attention_sink_size": "attention sinks",
}


def required(settings: dict[str, Any], key: str, where: str = "the config") -> Any:
    """settings[key], or a clear error naming what is missing (a truncated or foreign config)."""
    if key not in settings:
        raise ScratchLMError(f"config.json: {where} has no {key!r}")
    return settings[key]


def rope_settings(hf: dict[str, Any]) -> dict[str, Any]:
    """Our rope_* fields from either dialect: transformers 5's `rope_parameters`, or 4's `rope_theta` plus
    `rope_scaling` (whose type key was once `type`)."""
    params = hf.get("rope_parameters")
    if isinstance(params, dict):
        scaling: dict[str, Any] = params
        theta = params.get("rope_theta", hf.get("rope_theta", 10000.0))
    else:
        scaling = hf.get("rope_scaling") or {}
        theta = hf.get("rope_theta", 10000.0)
    kind = scaling.get("rope_type", scaling.get("type", "default")) or "default"
    if kind not in ROPE_TYPES:
        raise ScratchLMError(
            f"config.json: rope type {kind!r} is not supported (supported: {', '.join(ROPE_TYPES)})"
        )
    out: dict[str, Any] = {"rope_theta": float(theta), "rope_type": kind}
    if kind in ("linear", "llama3"):
        out["rope_factor"] = float(required(scaling, "factor", f"rope {kind} scaling"))
    if kind == "yarn":
        out.update(_yarn_settings(scaling, hf))
    if kind == "llama3":
        out["rope_low_freq_factor"] = float(required(scaling, "low_freq_factor", f"rope {kind} scaling"))
        out["rope_high_freq_factor"] = float(required(scaling, "high_freq_factor", f"rope {kind} scaling"))
        out["rope_original_context"] = int(
            required(scaling, "original_max_position_embeddings", f"rope {kind} scaling")
        )
    return out


def _yarn_settings(scaling: dict[str, Any], hf: dict[str, Any]) -> dict[str, Any]:
    """Our rope_* fields for a yarn scaling, its attention factor resolved as transformers resolves it (given,
    or from `mscale`/`mscale_all_dim`, or 0.1 ln(factor) + 1)."""
    import math

    original = int(required(scaling, "original_max_position_embeddings", "rope yarn scaling"))
    factor = scaling.get("factor") or required(hf, "max_position_embeddings") / original

    def mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    attention = scaling.get("attention_factor")
    if attention is None:
        m, m_all = scaling.get("mscale"), scaling.get("mscale_all_dim")
        attention = mscale(factor, m) / mscale(factor, m_all) if m and m_all else mscale(factor)
    return {
        "rope_factor": float(factor),
        "rope_original_context": original,
        "rope_beta_fast": float(scaling.get("beta_fast") or 32),
        "rope_beta_slow": float(scaling.get("beta_slow") or 1),
        "rope_attention_factor": float(attention),
        "rope_truncate": bool(scaling.get("truncate", True)),
    }


# HF's per-layer-type names -> ours.
LAYER_TYPES = {"full_attention": "full", "sliding_attention": "sliding"}


def layered_rope(hf: dict[str, Any], theta: float, local_theta: float) -> dict[str, Any]:
    """Rope settings of a model whose sliding and full layers may turn differently (Gemma 3, Olmo 3): our
    rope_* fields from the full layers' and rope_local_theta from the sliding layers', which take no scaling.
    transformers 5 writes `rope_parameters` per layer type ({"full_attention": ..., "sliding_attention":
    ...}); transformers 4 wrote `rope_theta` + `rope_scaling` for the full layers (`theta` and `local_theta`
    are the defaults, the latter the transformers 4 sliding base)."""
    params = hf.get("rope_parameters")
    if isinstance(params, dict) and ("full_attention" in params or "sliding_attention" in params):
        full = params.get("full_attention") or {}
        local = params.get("sliding_attention") or {}
        out = rope_settings({"rope_parameters": {"rope_theta": theta, **full}})
        kind = local.get("rope_type", "default")
        if kind != "default":
            raise ScratchLMError(f"config.json: rope type {kind!r} on the sliding layers is not supported")
        out["rope_local_theta"] = float(local.get("rope_theta", local_theta))
        return out
    out = rope_settings({"rope_theta": theta, **hf, "rope_parameters": None})
    out["rope_local_theta"] = local_theta
    return out


def shape_settings(
    hf: dict[str, Any], context: int, tied: bool, head_dim: int | None = None
) -> dict[str, Any]:
    """The ModelConfig fields every Llama-family config.json spells alike: sizes, heads (an explicit
    `head_dim`, else `head_dim` or hidden / heads), dropout, norm eps, tying (`tied`: the family's default),
    rotary positions, no biases outside q/k/v. `context` is the family's default max_position_embeddings."""
    heads = required(hf, "num_attention_heads")
    hidden = required(hf, "hidden_size")
    head_dim = hf.get("head_dim") or head_dim or hidden // heads
    return {
        "vocab_size": required(hf, "vocab_size"),
        "context_length": hf.get("max_position_embeddings", context),
        "emb_dim": hidden,
        "n_heads": heads,
        "n_kv_heads": hf.get("num_key_value_heads") or heads,
        "n_layers": required(hf, "num_hidden_layers"),
        "head_size": head_dim if head_dim * heads != hidden else None,
        "ff_dim": required(hf, "intermediate_size"),
        "dropout": float(hf.get("attention_dropout") or 0.0),
        "bias": False,
        "tie_embeddings": bool(hf.get("tie_word_embeddings", tied)),
        "norm_eps": float(hf.get("rms_norm_eps", 1e-6)),
        "positions": "rope",
    }


def layer_kinds(types: list[str]) -> tuple[str, ...]:
    """Our layer kinds for HF's `layer_types` ("full_attention", "sliding_attention"); others refused."""
    unknown = sorted(set(types) - set(LAYER_TYPES))
    if unknown:
        raise ScratchLMError(f"config.json: layer_types {unknown} are not supported")
    return tuple(LAYER_TYPES[t] for t in types)


def config_from_hf_llama(hf: dict[str, Any]) -> ModelConfig:
    """Our ModelConfig for a Llama-family config.json; a feature we do not build is a clear error."""
    model_type = hf.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ScratchLMError(f"config.json: model_type {model_type!r} is not a Llama-family model")
    for key, what in UNSUPPORTED.items():
        if hf.get(key):
            raise ScratchLMError(f"config.json: {key}={hf[key]!r}: {what} are not supported")
    if model_type == "gemma3_text":
        from scratchlm.interop.hf_gemma import config_from_hf_gemma3

        return config_from_hf_gemma3(hf)
    if model_type in ("olmo2", "olmo3"):
        from scratchlm.interop.hf_olmo import config_from_hf_olmo

        return config_from_hf_olmo(hf)
    # Mistral slides a window on every layer; Qwen's per-layer windows (use_sliding_window) we do not build.
    window = hf.get("sliding_window") if model_type == "mistral" else None
    if (
        model_type != "mistral"
        and hf.get("sliding_window") is not None
        and hf.get("use_sliding_window", True)
    ):
        raise ScratchLMError(
            f"config.json: sliding-window attention (sliding_window={hf['sliding_window']}) is not supported "
            f"for {model_type}: only full attention"
        )
    activation = hf.get("hidden_act", "silu")
    if activation != "silu":
        raise ScratchLMError(f"config.json: hidden_act {activation!r} is not supported (SwiGLU: silu only)")
    for key in ("attention_bias", "mlp_bias"):
        if hf.get(key):
            raise ScratchLMError(f"config.json: {key}=true is not supported (no biases but Qwen2's q/k/v)")
    layer_types = set(hf.get("layer_types") or ["full_attention"])
    if layer_types != {"full_attention"}:
        raise ScratchLMError(
            f"config.json: layer_types {sorted(layer_types)}: only full attention is supported yet"
        )
    if hf.get("pretraining_tp", 1) != 1:
        raise ScratchLMError("config.json: pretraining_tp > 1 is not supported")
    return ModelConfig(
        **shape_settings(hf, context=2048, tied=False),
        qkv_bias=model_type == "qwen2",  # Qwen2 always has q/k/v biases (no config key says so)
        qk_norm=model_type == "qwen3",
        norm="rmsnorm",
        mlp="swiglu",
        sliding_window=window,
        **rope_settings(hf),
    )


def state_dict_from_hf_llama(
    hf_sd: dict[str, torch.Tensor], cfg: ModelConfig, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """HF Llama tensors under our names, in `dtype`: q/k/v concatenated into `qkv`; `model.` prefixes
    optional. Consumes `hf_sd` as it goes, so a model's weights are held about once, not twice."""
    ours: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    block_keys = {"sandwich": SANDWICH_KEYS, "post": POST_KEYS}.get(cfg.norm_placement, BLOCK_KEYS)
    for key in list(hf_sd):
        tensor = hf_sd.pop(key).to(dtype)
        name = key.removeprefix("model.")
        if name.endswith(IGNORED):
            continue
        if name == "embed_tokens.weight":
            ours["emb.tok_emb.weight"] = tensor
        elif name == "norm.weight":
            ours["final_norm.scale"] = tensor
        elif name == "lm_head.weight":
            if not cfg.tie_embeddings:  # a tied model's saved head is the embedding again
                ours["out_head.weight"] = tensor
        else:
            parts = name.split(".", 2)
            if len(parts) != 3 or parts[0] != "layers" or not parts[1].isdigit():
                raise ScratchLMError(f"unexpected tensor {key!r} in a Llama-family checkpoint")
            block, rest = parts[1], parts[2]
            proj, _, kind = rest.removeprefix("self_attn.").partition(".")
            if rest.startswith("self_attn.") and proj in QKV:
                qkv.setdefault((block, kind), {})[proj] = tensor
            elif rest in block_keys:
                ours[f"trf_blocks.{block}.{block_keys[rest]}"] = tensor
            else:
                raise ScratchLMError(f"unexpected tensor {key!r} in a Llama-family checkpoint")
    for (block, kind), parts in sorted(qkv.items()):
        missing = [p for p in QKV if p not in parts]
        if missing:
            raise ScratchLMError(f"the checkpoint lacks layers.{block}.self_attn.{missing[0]}.{kind}")
        ours[f"trf_blocks.{block}.att.qkv.{kind}"] = torch.cat([parts.pop(p) for p in QKV], dim=0)
    if cfg.tie_embeddings and "emb.tok_emb.weight" in ours:
        ours["out_head.weight"] = ours["emb.tok_emb.weight"]
    return ours


def load_hf_llama(directory: str | os.PathLike, dtype: torch.dtype = torch.float32) -> GPT:
    """A GPT with the weights of an HF Llama-family directory (config.json + safetensors, single or
    sharded), in `dtype`, in eval mode.

    Memory: the model is built on the meta device (no storage) and the loaded tensors become its
    parameters, so the weights are held once, not once in the files' tensors and again in the model."""
    directory = Path(directory)
    cfg = config_from_hf_llama(read_json(directory / "config.json"))
    sd = state_dict_from_hf_llama(read_hf_weights(directory), cfg, dtype)
    with torch.device("meta"):
        model = GPT(cfg, init=False)
    load_exact(model, sd, directory, assign=True)
    if cfg.tie_embeddings:  # assigning gave the head its own Parameter over the same storage: tie it again
        model.out_head.weight = model.emb.tok_emb.weight
    model.reset_rope()  # the buffers built on the meta device
    return model.eval()
