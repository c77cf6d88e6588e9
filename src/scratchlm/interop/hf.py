"""Hugging Face GPT-2 checkpoints (`GPT2LMHeadModel`), both ways.

Import reads `config.json` plus `model.safetensors` (or a sharded index, or `pytorch_model.bin` with
`weights_only=True`, never a full unpickle); export writes a directory `transformers` loads unchanged.
GPT-2 stores its linear layers as `Conv1D`, weight (in, out): they are transposed into `nn.Linear` (out, in).
Its fused `c_attn` is q, k and v stacked the way our `qkv` is, so one transpose maps it whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from scratchlm.config import ModelConfig
from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json
from scratchlm.model.gpt import GPT

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# HF name (after `h.{i}.`) -> ours (after `trf_blocks.{i}.`)
BLOCK_KEYS = {
    "ln_1.weight": "norm1.scale",
    "ln_1.bias": "norm1.shift",
    "attn.c_attn.weight": "att.qkv.weight",
    "attn.c_attn.bias": "att.qkv.bias",
    "attn.c_proj.weight": "att.out_proj.weight",
    "attn.c_proj.bias": "att.out_proj.bias",
    "ln_2.weight": "norm2.scale",
    "ln_2.bias": "norm2.shift",
    "mlp.c_fc.weight": "ff.layers.0.weight",
    "mlp.c_fc.bias": "ff.layers.0.bias",
    "mlp.c_proj.weight": "ff.layers.2.weight",
    "mlp.c_proj.bias": "ff.layers.2.bias",
}
TOP_KEYS = {
    "wte.weight": "emb.tok_emb.weight",
    "wpe.weight": "emb.pos_emb.weight",
    "ln_f.weight": "final_norm.scale",
    "ln_f.bias": "final_norm.shift",
}


# ---- config ------------------------------------------------------------------------------------------


def config_from_hf(hf: dict[str, Any]) -> ModelConfig:
    """Our config for an HF GPT-2 `config.json`; anything GPT-2-like we cannot run is refused clearly."""
    if hf.get("model_type") != "gpt2":
        raise ScratchLMError(
            f"config.json: model_type {hf.get('model_type')!r} is not supported "
            "(supported: gpt2, llama, mistral, qwen2, qwen3)"
        )
    activation = hf.get("activation_function", "gelu_new")
    if activation not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ScratchLMError(f"config.json: activation {activation!r} is not supported (tanh GELU only)")
    if hf.get("n_inner") not in (None, 4 * hf["n_embd"]):
        raise ScratchLMError("config.json: n_inner must be 4 * n_embd")
    if hf.get("scale_attn_by_inverse_layer_idx") or hf.get("scale_attn_weights") is False:
        raise ScratchLMError("config.json: non-standard attention scaling is not supported")
    return ModelConfig(
        vocab_size=hf["vocab_size"],
        context_length=hf.get("n_positions", hf.get("n_ctx", 1024)),
        emb_dim=hf["n_embd"],
        n_heads=hf["n_head"],
        n_layers=hf["n_layer"],
        dropout=hf.get("resid_pdrop", 0.1),
        qkv_bias=True,
        tie_embeddings=hf.get("tie_word_embeddings", True),
        norm_eps=hf.get("layer_norm_epsilon", 1e-5),
    )


def is_gpt2_architecture(cfg: ModelConfig) -> bool:
    """Whether `cfg` is GPT-2's architecture (whatever its size): what the GPT-2 format can hold."""
    return (
        cfg.positions == "learned"
        and cfg.norm == "layernorm"
        and cfg.mlp == "gelu"
        and cfg.hidden_dim == 4 * cfg.emb_dim
        and cfg.bias
        and cfg.kv_heads == cfg.n_heads
        and cfg.head_dim * cfg.n_heads == cfg.emb_dim
        and not cfg.qk_norm
        and cfg.norm_placement == "pre"
        and cfg.qk_norm_scope == "head"
        and not cfg.emb_scale
        and cfg.attn_scalar is None
        and cfg.attn_softcap is None
        and cfg.logit_softcap is None
        and not cfg.value_embeddings
        and set(cfg.kinds) == {"full"}
    )


def require_gpt2(cfg: ModelConfig) -> None:
    if not is_gpt2_architecture(cfg):
        raise ScratchLMError(
            "this model is not GPT-2-shaped (rotary positions, RMSNorm, a gated MLP, grouped-query or "
            "sliding-window attention, another MLP width, no biases, Gemma's norms or scales, value "
            "embeddings): it cannot be written as a Hugging Face GPT-2 model"
        )


def config_to_hf(cfg: ModelConfig, eos_id: int | None = None) -> dict[str, Any]:
    """HF GPT-2's config.json for `cfg`; a model of another architecture is a clear error."""
    require_gpt2(cfg)
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.context_length,
        "n_ctx": cfg.context_length,
        "n_embd": cfg.emb_dim,
        "n_layer": cfg.n_layers,
        "n_head": cfg.n_heads,
        "n_inner": None,
        "activation_function": "gelu_new",
        "resid_pdrop": cfg.dropout,
        "embd_pdrop": cfg.dropout,
        "attn_pdrop": cfg.dropout,
        "layer_norm_epsilon": cfg.norm_eps,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": cfg.tie_embeddings,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "use_cache": True,
        "torch_dtype": "float32",
    }


# ---- weights -----------------------------------------------------------------------------------------


def state_dict_from_hf(hf_sd: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Rename and transpose HF GPT-2 tensors into our names; keys may carry the `transformer.` prefix."""
    ours: dict[str, torch.Tensor] = {}
    for key, tensor in hf_sd.items():
        name = key.removeprefix("transformer.")
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # causal-mask buffers of old checkpoints
        if name == "lm_head.weight":
            if not cfg.tie_embeddings:
                ours["out_head.weight"] = tensor
            continue
        if name in TOP_KEYS:
            ours[TOP_KEYS[name]] = tensor
            continue
        parts = name.split(".", 2)
        if len(parts) == 3 and parts[0] == "h" and parts[1].isdigit() and parts[2] in BLOCK_KEYS:
            target = f"trf_blocks.{parts[1]}.{BLOCK_KEYS[parts[2]]}"
            ours[target] = tensor.t() if parts[2] in CONV1D else tensor
            continue
        raise ScratchLMError(f"unexpected tensor {key!r} in a GPT-2 checkpoint")
    if cfg.tie_embeddings:
        ours["out_head.weight"] = ours.get("emb.tok_emb.weight")
    return {k: v.contiguous() for k, v in ours.items() if v is not None}


def state_dict_to_hf(model: GPT) -> dict[str, torch.Tensor]:
    """Our weights under HF's names (with the `transformer.` prefix, as transformers 5 saves them)."""
    cfg = model.cfg
    require_gpt2(cfg)
    sd = model.state_dict()
    hf: dict[str, torch.Tensor] = {}
    for hf_name, ours in TOP_KEYS.items():
        hf[f"transformer.{hf_name}"] = sd[ours]
    for i in range(cfg.n_layers):
        for hf_name, ours in BLOCK_KEYS.items():
            key = f"trf_blocks.{i}.{ours}"
            if key not in sd:  # trained without qkv bias: HF's c_attn always has one, so write zeros
                tensor = torch.zeros(3 * cfg.emb_dim, dtype=sd[f"trf_blocks.{i}.att.qkv.weight"].dtype)
            else:
                tensor = sd[key].t() if hf_name in CONV1D else sd[key]
            hf[f"transformer.h.{i}.{hf_name}"] = tensor
    if not cfg.tie_embeddings:
        hf["lm_head.weight"] = sd["out_head.weight"]
    return {k: v.detach().contiguous().clone() for k, v in hf.items()}


def read_hf_weights(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of an HF checkpoint directory: safetensors first, then pickles with weights_only=True."""
    for index_name, loader in (
        ("model.safetensors.index.json", load_safetensors),
        ("pytorch_model.bin.index.json", _load_pickle),
    ):
        single = directory / index_name.removesuffix(".index.json")
        if single.is_file():
            return loader(single)
        index = directory / index_name
        if index.is_file():
            weight_map = read_json(index).get("weight_map", {})
            tensors: dict[str, torch.Tensor] = {}
            for shard in sorted(set(weight_map.values())):
                tensors.update(loader(directory / shard))
            missing = set(weight_map) - set(tensors)
            if missing:
                raise ScratchLMError(
                    f"{index}: tensors listed but not found in the shards: {sorted(missing)[:5]}"
                )
            return tensors
    raise ScratchLMError(
        f"{directory}: no model.safetensors, pytorch_model.bin or sharded index (*.index.json) found"
    )


def load_hf_gpt2(directory: str | os.PathLike) -> GPT:
    """A GPT with the weights of an HF GPT-2 directory (config.json + weights)."""
    directory = Path(directory)
    cfg = config_from_hf(read_json(directory / "config.json"))
    model = GPT(cfg, init=False)
    sd = state_dict_from_hf(read_hf_weights(directory), cfg)
    load_exact(model, sd, directory)
    return model.eval()


def save_hf_gpt2(model: GPT, directory: str | os.PathLike, eos_id: int | None = None) -> Path:
    """Write config.json, generation_config.json and model.safetensors that transformers loads as is."""
    config = config_to_hf(model.cfg, eos_id)  # refuses another architecture before anything is written
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "config.json", config)
    write_json(directory / "generation_config.json", {"bos_token_id": eos_id, "eos_token_id": eos_id})
    tmp = directory / "model.safetensors.tmp"
    save_file(state_dict_to_hf(model), str(tmp), metadata={"format": "pt"})
    os.replace(tmp, directory / "model.safetensors")
    return directory


# ---- helpers -----------------------------------------------------------------------------------------


def load_exact(model: GPT, sd: dict[str, torch.Tensor], source: Path, assign: bool = False) -> None:
    """Load `sd` into `model`, every tensor present and of the right shape (else a clear error naming it).
    With `assign`, the tensors become the parameters (no copy: for a model built on the meta device)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    if missing:
        raise ScratchLMError(f"{source}: the checkpoint lacks {len(missing)} tensor(s), e.g. {missing[:3]}")
    for key, tensor in sd.items():
        if key not in expected:
            raise ScratchLMError(f"{source}: unexpected tensor {key!r}")
        if tensor.shape != expected[key].shape:
            raise ScratchLMError(
                f"{source}: {key} has shape {tuple(tensor.shape)}, "
                f"the config needs {tuple(expected[key].shape)}"
            )
    model.load_state_dict(sd, strict=True, assign=assign)


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise ScratchLMError(f"{path}: no such file") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise ScratchLMError(f"{path}: not a readable safetensors file ({exc})") from None


def _load_pickle(path: Path) -> dict[str, torch.Tensor]:
    # weights_only=True: tensors and plain containers only; arbitrary pickled code is refused.
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ScratchLMError(f"{path}: no such file") from None
    except Exception as exc:
        raise ScratchLMError(f"{path}: refused or unreadable with weights_only=True ({exc})") from None
