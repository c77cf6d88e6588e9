"""LoRA adapters in PEFT's format: `adapter_config.json` + `adapter_model.safetensors`.

PEFT names a GPT-2 adapter's tensors after the Hugging Face module they sit on, under the wrapper
`base_model.model.`: `base_model.model.transformer.h.3.attn.c_attn.lora_A.weight` (rank, in) and
`….lora_B.weight` (out, rank). GPT-2's `Conv1D` layers store their weight as (in, out), which PEFT handles
with `fan_in_fan_out`, but lora_A/lora_B keep nn.Linear's layout, so they are exactly our `lora_A`/`lora_B`:
no transposes, and our fused `qkv` is stacked like HF's `c_attn`. The scaling is `lora_alpha / r` (or
`/ sqrt(r)` with `use_rslora`), as ours.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json
from scratchlm.model.lora import TARGETS, LoRAConfig, apply_lora, load_lora_state_dict, lora_modules

# our target → PEFT target_modules entry (a suffix PEFT matches against module names)
HF_TARGETS = {
    "qkv": "attn.c_attn",
    "out_proj": "attn.c_proj",
    "ff_in": "mlp.c_fc",
    "ff_out": "mlp.c_proj",
    "head": "lm_head",
}
_HF_PATH = {v: k for k, v in HF_TARGETS.items()}
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def save_peft_adapter(
    model: torch.nn.Module, directory: str | os.PathLike, base_model_name_or_path: str | None = None
) -> Path:
    """Write the LoRA layers of `model` (prepared by `apply_lora`) as a PEFT adapter directory, for a base
    exported with `scratchlm.interop.hf.save_hf_gpt2` (or OpenAI's GPT-2 itself)."""
    cfg: LoRAConfig | None = getattr(model, "lora_config", None)
    modules = lora_modules(model)
    if cfg is None or not modules:
        raise ScratchLMError("the model has no LoRA layers: call apply_lora first")
    if any(m.merged for m in modules.values()):
        raise ScratchLMError("the LoRA layers are merged into the weights: unmerge_lora before saving")
    tensors = {}
    for name, m in modules.items():
        key = _hf_module_name(name)
        tensors[f"base_model.model.{key}.lora_A.weight"] = m.lora_A.detach().contiguous().cpu()
        tensors[f"base_model.model.{key}.lora_B.weight"] = m.lora_B.detach().contiguous().cpu()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    write_json(
        out / ADAPTER_CONFIG,
        {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model_name_or_path,
            "r": cfg.rank,
            "lora_alpha": cfg.alpha,
            "lora_dropout": cfg.dropout,
            "target_modules": [HF_TARGETS[t] for t in cfg.targets],
            "layers_to_transform": list(cfg.layers) if cfg.layers is not None else None,
            "use_rslora": cfg.rslora,
            "fan_in_fan_out": True,  # GPT-2's Conv1D; PEFT turns it off by itself for lm_head (a Linear)
            "bias": "none",
            "modules_to_save": None,
            "init_lora_weights": True,
            "inference_mode": True,
            "use_dora": False,
            "rank_pattern": {},
            "alpha_pattern": {},
            "revision": None,
            "library": "scratchlm",
        },
    )
    return out


def read_peft_config(directory: str | os.PathLike) -> LoRAConfig:
    """Our LoRAConfig for a PEFT adapter directory, or a clear error for what we cannot represent."""
    directory = Path(directory)
    raw = read_json(directory / ADAPTER_CONFIG)
    if raw.get("peft_type", "LORA") != "LORA":
        raise ScratchLMError(f"{directory}: a {raw.get('peft_type')} adapter; only LoRA is supported")
    for key, bad in (("use_dora", True), ("bias", "all"), ("bias", "lora_only")):
        if raw.get(key) == bad:
            raise ScratchLMError(f"{directory}: {key}={bad!r} adapters are not supported")
    if raw.get("rank_pattern") or raw.get("alpha_pattern"):
        raise ScratchLMError(f"{directory}: per-layer rank_pattern/alpha_pattern are not supported")
    if raw.get("modules_to_save"):
        raise ScratchLMError(f"{directory}: modules_to_save {raw['modules_to_save']} is not supported")
    tensors = load_file(str(directory / ADAPTER_WEIGHTS))
    found = sorted({_our_target(k) for k in tensors})
    layers = raw.get("layers_to_transform")
    if isinstance(layers, int):
        layers = [layers]
    return LoRAConfig(
        rank=int(raw["r"]),
        alpha=float(raw["lora_alpha"]),
        dropout=float(raw.get("lora_dropout") or 0.0),
        targets=tuple(t for t in TARGETS if t in found),  # what the tensors say, in our order
        rslora=bool(raw.get("use_rslora", False)),
        layers=tuple(layers) if layers else None,
    )


def load_peft_adapter(model: torch.nn.Module, directory: str | os.PathLike) -> dict:
    """Put the PEFT adapter in `directory` on `model` (a scratchlm GPT with the adapter's base weights):
    `apply_lora` with its config, then its tensors. Returns the trainable-parameter report."""
    directory = Path(directory)
    if not (directory / ADAPTER_CONFIG).is_file() or not (directory / ADAPTER_WEIGHTS).is_file():
        raise ScratchLMError(
            f"{directory}: not a PEFT adapter (needs {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS})"
        )
    cfg = read_peft_config(directory)
    tensors = load_file(str(directory / ADAPTER_WEIGHTS))
    if cfg.layers is None:  # PEFT also skips layers by naming only some; ours needs the list
        blocks = sorted({int(m.group(1)) for k in tensors if (m := re.search(r"\.h\.(\d+)\.", k))})
        if blocks and blocks != list(range(len(model.trf_blocks))):
            cfg = LoRAConfig(**{**cfg.to_dict(), "layers": tuple(blocks)})
    report = apply_lora(model, cfg)
    ours = {".".join(_our_path(key)): tensor for key, tensor in tensors.items()}
    try:
        load_lora_state_dict(model, ours)
    except ScratchLMError as exc:
        raise ScratchLMError(f"{directory}: {exc} (an adapter for another base model?)") from None
    return report


def _hf_module_name(path: str) -> str:
    if path == TARGETS["head"]:
        return "lm_head"
    m = re.fullmatch(r"trf_blocks\.(\d+)\.(.+)", path)
    target = next(t for t, ours in TARGETS.items() if ours == m.group(2))
    return f"transformer.h.{m.group(1)}.{HF_TARGETS[target]}"


_KEY = re.compile(
    r"(?:base_model\.model\.)?(?:transformer\.)?"
    r"(?:h\.(?P<block>\d+)\.(?P<module>attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)|(?P<head>lm_head))"
    r"\.(?P<part>lora_A|lora_B)(?:\.[A-Za-z0-9_]+)?\.weight"
)


def _parse(key: str) -> re.Match:
    m = _KEY.fullmatch(key)
    if m is None:
        raise ScratchLMError(f"adapter tensor {key!r}: not a LoRA weight of a GPT-2 module")
    return m


def _our_target(key: str) -> str:
    m = _parse(key)
    return "head" if m["head"] else _HF_PATH[m["module"]]


def _our_path(key: str) -> tuple[str, str]:
    m = _parse(key)
    if m["head"]:
        return TARGETS["head"], m["part"]
    return f"trf_blocks.{m['block']}.{TARGETS[_HF_PATH[m['module']]]}", m["part"]
