"""Write a scratchlm model of a modern family as a Hugging Face directory that `transformers` loads unchanged:
the reverse of `hf_llama`, `hf_gemma` and `hf_olmo` (GPT-2-shaped models go through `hf.save_hf_gpt2`).

The family is read off the config's choices (`hf_model_type`): Gemma 3's block is `gemma3_text`, Olmo's
post-norm `olmo2` (no windows) or `olmo3`, QK-norm per head `qwen3`, q/k/v biases `qwen2`, a window on every
layer `mistral`, the rest `llama`. A config no family describes is refused, naming what differs.

config.json is written in both dialects at once: transformers 5 reads `rope_parameters`, transformers 4 reads
`rope_theta` + `rope_scaling` (+ Gemma's `rope_local_base_freq` and `sliding_window_pattern`); a
transformers-5-only file is read by transformers 4 as rope theta 10,000, silently. Both say the same thing,
and whichever a reader takes, it builds the same model (tested on each half alone).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from scratchlm.config import ModelConfig
from scratchlm.errors import ScratchLMError
from scratchlm.files import write_json
from scratchlm.interop.hf_llama import BLOCK_KEYS, POST_KEYS, QKV, SANDWICH_KEYS
from scratchlm.model.gpt import GPT

ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "olmo2": "Olmo2ForCausalLM",
    "olmo3": "Olmo3ForCausalLM",
}
HF_LAYER_TYPES = {"full": "full_attention", "sliding": "sliding_attention"}


def _differences(cfg: ModelConfig, wanted: dict[str, Any]) -> list[str]:
    return [
        f"{key}={getattr(cfg, key)!r} (needs {value!r})"
        for key, value in wanted.items()
        if getattr(cfg, key) != value
    ]


def hf_model_type(cfg: ModelConfig) -> str:
    """The Hugging Face `model_type` whose architecture is exactly `cfg`'s, else a clear error."""
    common = {"positions": "rope", "bias": False, "attn_softcap": None, "value_embeddings": 0}
    sliding = "sliding" in cfg.kinds
    if cfg.norm_placement == "sandwich":
        model_type = "gemma3_text"
        wanted = {
            "norm": "rmsnorm_offset",
            "mlp": "geglu",
            "qk_norm": True,
            "qk_norm_scope": "head",
            "emb_scale": True,
            "qkv_bias": False,
        }
    elif cfg.norm_placement == "post":
        model_type = "olmo3" if sliding else "olmo2"
        wanted = {
            "norm": "rmsnorm",
            "mlp": "swiglu",
            "qk_norm": True,
            "qk_norm_scope": "projection",
            "qkv_bias": False,
            "emb_scale": False,
            "attn_scalar": None,
            "logit_softcap": None,
        }
    else:
        wanted = {
            "norm": "rmsnorm",
            "mlp": "swiglu",
            "emb_scale": False,
            "attn_scalar": None,
            "logit_softcap": None,
            "rope_local_theta": None,
            "qk_norm_scope": "head",
        }
        if cfg.qk_norm:
            model_type, wanted["qkv_bias"] = "qwen3", False
        elif cfg.qkv_bias:
            model_type = "qwen2"
        else:
            model_type = "mistral" if sliding and cfg.layer_types is None else "llama"
        if sliding and model_type != "mistral":
            raise ScratchLMError(
                f"a {model_type} model with sliding-window layers has no Hugging Face family here "
                "(Mistral slides every layer; Gemma 3 and Olmo 3 have their own blocks)"
            )
    wrong = _differences(cfg, {**common, **wanted})
    if wrong:
        raise ScratchLMError(
            f"this model is no Hugging Face family scratchlm writes (closest: {model_type}): "
            + ", ".join(wrong)
        )
    return model_type


def _rope(cfg: ModelConfig) -> dict[str, Any]:
    """The rope parameters of the full layers, transformers 5's way (type, theta, scaling fields)."""
    params: dict[str, Any] = {"rope_type": cfg.rope_type, "rope_theta": cfg.rope_theta}
    if cfg.rope_type in ("linear", "llama3"):
        params["factor"] = cfg.rope_factor
    if cfg.rope_type == "yarn":
        params.update(
            factor=cfg.rope_factor,
            original_max_position_embeddings=cfg.rope_original_context,
            beta_fast=cfg.rope_beta_fast,
            beta_slow=cfg.rope_beta_slow,
            attention_factor=cfg.rope_attention_factor,
            truncate=cfg.rope_truncate,
        )
    if cfg.rope_type == "llama3":
        params.update(
            low_freq_factor=cfg.rope_low_freq_factor,
            high_freq_factor=cfg.rope_high_freq_factor,
            original_max_position_embeddings=cfg.rope_original_context,
        )
    return params


def config_to_hf_family(
    cfg: ModelConfig, eos_id: int | None = None, bos_id: int | None = None
) -> dict[str, Any]:
    """config.json for `cfg` in its family, both dialects."""
    model_type = hf_model_type(cfg)
    rope = _rope(cfg)
    scaling = {k: v for k, v in rope.items() if k != "rope_theta"} if cfg.rope_type != "default" else None
    config: dict[str, Any] = {
        "architectures": [ARCHITECTURES[model_type]],
        "model_type": model_type,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.emb_dim,
        "intermediate_size": cfg.hidden_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.context_length,
        "rms_norm_eps": cfg.norm_eps,
        "tie_word_embeddings": cfg.tie_embeddings,
        "attention_dropout": cfg.dropout,
        "attention_bias": False,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "pad_token_id": None,
        "use_cache": True,
        "dtype": "float32",
        "torch_dtype": "float32",  # transformers 4's name of it
        # transformers 4's dialect; `rope_parameters` below is transformers 5's
        "rope_theta": cfg.rope_theta,
        "rope_scaling": scaling,
    }
    if model_type == "llama":
        config["mlp_bias"] = False
    if model_type in ("qwen2", "qwen3"):
        config.update(use_sliding_window=False, sliding_window=None, max_window_layers=cfg.n_layers)
    if model_type == "mistral":
        config["sliding_window"] = cfg.sliding_window
    layered = model_type in ("gemma3_text", "olmo3")
    if layered:
        if cfg.rope_local_theta is None and cfg.rope_type != "default" and "sliding" in cfg.kinds:
            raise ScratchLMError(
                f"the sliding layers turn with the full layers' {cfg.rope_type} scaling (rope_local_theta is "
                f"unset): {model_type} leaves its sliding layers unscaled; set rope_local_theta"
            )
        local = cfg.rope_local_theta if cfg.rope_local_theta is not None else cfg.rope_theta
        if model_type == "olmo3" and local != cfg.rope_theta:
            # transformers 4's Olmo 3 turns its sliding layers at rope_theta, unscaled: it cannot say this
            raise ScratchLMError(
                f"an Olmo 3 whose sliding layers turn at another base ({local:g}) than its full ones "
                f"({cfg.rope_theta:g}) cannot be written so that transformers 4 reads it the same"
            )
        config["rope_parameters"] = {
            "full_attention": rope,
            "sliding_attention": {"rope_type": "default", "rope_theta": local},
        }
        config["layer_types"] = [HF_LAYER_TYPES[kind] for kind in cfg.kinds]
        config["sliding_window"] = cfg.sliding_window
    else:
        config["rope_parameters"] = rope
    if model_type == "gemma3_text":
        config.update(
            hidden_activation="gelu_pytorch_tanh",
            query_pre_attn_scalar=_number(cfg.attn_scalar if cfg.attn_scalar is not None else cfg.head_dim),
            final_logit_softcapping=cfg.logit_softcap,
            attn_logit_softcapping=None,
            rope_local_base_freq=local,
            use_bidirectional_attention=False,
        )
        config.pop("hidden_act")
        pattern = _regular_pattern(cfg.kinds)
        if pattern is not None:  # transformers 4 before `layer_types` read the pattern
            config["sliding_window_pattern"] = pattern
    return config


def _number(value: float) -> int | float:
    """An int where the value is whole (transformers 5 checks that an int field holds an int)."""
    return int(value) if float(value).is_integer() else value


def _regular_pattern(kinds: tuple[str, ...]) -> int | None:
    """n when every n-th layer is full and the rest slide (Gemma 3's 6), else None."""
    for n in range(1, len(kinds) + 2):
        if kinds == tuple("sliding" if (i + 1) % n else "full" for i in range(len(kinds))):
            return n
    return None


def state_dict_to_hf_family(model: GPT) -> dict[str, torch.Tensor]:
    """The model's tensors under the family's Hugging Face names, q/k/v split out of our fused `qkv`; a tied
    head is left out (transformers ties it from the config)."""
    cfg = model.cfg
    block_keys = {"sandwich": SANDWICH_KEYS, "post": POST_KEYS}.get(cfg.norm_placement, BLOCK_KEYS)
    theirs = {ours: hf for hf, ours in block_keys.items()}
    sizes = [cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim]
    out: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if name == "emb.tok_emb.weight":
            out["model.embed_tokens.weight"] = tensor
        elif name == "final_norm.scale":
            out["model.norm.weight"] = tensor
        elif name == "out_head.weight":
            if not cfg.tie_embeddings:
                out["lm_head.weight"] = tensor
        else:
            _, block, rest = name.split(".", 2)
            prefix = f"model.layers.{block}."
            if rest.startswith("att.qkv."):
                kind = rest.rsplit(".", 1)[1]
                for proj, part in zip(QKV, tensor.split(sizes, dim=0)):
                    out[f"{prefix}self_attn.{proj}.{kind}"] = part
            elif rest in theirs:
                out[prefix + theirs[rest]] = tensor
            else:
                raise ScratchLMError(
                    f"{name}: no Hugging Face name for this tensor (merge LoRA layers first)"
                )
    return {k: v.contiguous().clone() for k, v in out.items()}  # split views share storage: copy them


def save_hf(
    model: GPT, directory: str | os.PathLike, eos_id: int | None = None, bos_id: int | None = None
) -> Path:
    """Write `model` as a Hugging Face directory (config.json, generation_config.json, model.safetensors):
    GPT-2's format for a GPT-2-shaped model, else its family's. The tokenizer files are written beside it by
    `scratchlm.formats.model_files.export_hf`."""
    from scratchlm.interop.hf import is_gpt2_architecture, save_hf_gpt2

    directory = Path(directory)
    if is_gpt2_architecture(model.cfg):
        return save_hf_gpt2(model, directory, eos_id=eos_id)
    config = config_to_hf_family(model.cfg, eos_id, bos_id)  # refuses a model no family describes, first
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "model.safetensors.tmp"
    save_file(state_dict_to_hf_family(model), str(tmp), metadata={"format": "pt"})
    os.replace(tmp, directory / "model.safetensors")
    write_json(directory / "config.json", config)
    write_json(directory / "generation_config.json", {"bos_token_id": bos_id, "eos_token_id": eos_id})
    return directory
