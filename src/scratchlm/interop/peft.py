"""LoRA adapters in PEFT's format: `adapter_config.json` + `adapter_model.safetensors`.

PEFT names a GPT-2 adapter's tensors after the Hugging Face module they sit on, under the wrapper
`base_model.model.`: `base_model.model.transformer.h.3.attn.c_attn.lora_A.weight` (rank, in) and
`….lora_B.weight` (out, rank). GPT-2's `Conv1D` layers store their weight as (in, out), which PEFT handles
with `fan_in_fan_out`, but lora_A/lora_B keep nn.Linear's layout, so they are exactly our `lora_A`/`lora_B`:
no transposes, and our fused `qkv` is stacked like HF's `c_attn`. The scaling is `lora_alpha / r` (or
`/ sqrt(r)` with `use_rslora`), as ours.

The modern families (Llama, Mistral, Qwen, Gemma 3, Olmo) name theirs after transformers' modules:
`base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`, targets `q_proj`, `k_proj`, `v_proj`,
`o_proj`, `gate_proj`, `up_proj`, `down_proj` (and `lm_head`). Our fused `qkv` adapter (A: r x in, B:
(q + 2 kv) x r) is written as three adapters sharing A, each with its rows of B: the same update, exactly.
PEFT's three (or fewer) are read into one fused adapter of rank r per projection present, A stacked and B
block-diagonal: again exactly their sum, with alpha scaled so that each keeps PEFT's alpha / r.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json
from scratchlm.model.lora import (
    TARGETS,
    LoRAConfig,
    apply_lora,
    load_lora_state_dict,
    lora_modules,
    trainable_report,
)

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


def _is_gpt2(model: torch.nn.Module) -> bool:
    from scratchlm.interop.hf import is_gpt2_architecture

    cfg = getattr(model, "cfg", None)
    return cfg is None or is_gpt2_architecture(cfg)


def adapter_format_problem(model: torch.nn.Module) -> str | None:
    """Why `model`'s LoRA layers cannot be written in PEFT's format — its architecture is no transformers
    family (e.g. preset modern-cpu's ReLU² MLP), so no base exists for the adapter — or None."""
    from scratchlm.interop.hf_export import hf_model_type

    if _is_gpt2(model):
        return None
    try:
        hf_model_type(model.cfg)
    except ScratchLMError as exc:
        return str(exc)
    return None


def save_adapter_if_possible(
    model: torch.nn.Module, directory: str | os.PathLike, base: str | None, log: Callable[[dict], None]
) -> Path | None:
    """`save_peft_adapter`, or, for an architecture PEFT's format cannot describe, a `no_peft_adapter`
    event in the run's log and None (the run's merged model is its result all the same)."""
    problem = adapter_format_problem(model)
    if problem is not None:
        log({"event": "no_peft_adapter", "reason": problem})
        return None
    return save_peft_adapter(model, directory, base)


def save_peft_adapter(
    model: torch.nn.Module, directory: str | os.PathLike, base_model_name_or_path: str | None = None
) -> Path:
    """Write the LoRA layers of `model` (prepared by `apply_lora`) as a PEFT adapter directory, for its base
    as exported by `scratchlm export` (GPT-2's format, or the model's family's)."""
    cfg: LoRAConfig | None = getattr(model, "lora_config", None)
    modules = lora_modules(model)
    if cfg is None or not modules:
        raise ScratchLMError("the model has no LoRA layers: call apply_lora first")
    if any(m.merged for m in modules.values()):
        raise ScratchLMError("the LoRA layers are merged into the weights: unmerge_lora before saving")
    problem = adapter_format_problem(model)
    if problem is not None:
        raise ScratchLMError(f"no PEFT adapter for this model: {problem}")
    gpt2 = _is_gpt2(model)
    tensors = {}
    for name, m in modules.items():
        A, B = m.lora_A.detach().cpu(), m.lora_B.detach().cpu()
        if gpt2:
            parts = [(_hf_module_name(name), A, B)]
        else:
            if m.rank != cfg.rank:
                raise ScratchLMError(
                    f"{name}: a rank-{m.rank} adapter in a rank-{cfg.rank} LoRA (read from PEFT's separate "
                    "q/k/v adapters): PEFT's format cannot hold it as one rank"
                )
            parts = _family_parts(model, name, A, B)
        for key, a, b in parts:
            tensors[f"base_model.model.{key}.lora_A.weight"] = a.contiguous().clone()
            tensors[f"base_model.model.{key}.lora_B.weight"] = b.contiguous().clone()
    targets = (
        [HF_TARGETS[t] for t in cfg.targets] if gpt2 else [n for t in cfg.targets for n in FAMILY_TARGETS[t]]
    )
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
            "target_modules": targets,
            "layers_to_transform": list(cfg.layers) if cfg.layers is not None else None,
            "use_rslora": cfg.rslora,
            # GPT-2's Conv1D (PEFT turns it off by itself for lm_head, a Linear); the families are Linear
            "fan_in_fan_out": gpt2,
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
    tensors = _lora_tensors(load_file(str(directory / ADAPTER_WEIGHTS)))
    found = sorted({_our_target(k) if _is_gpt2_key(k) else _family_key(k)[0] for k in tensors})
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
    saved = load_file(str(directory / ADAPTER_WEIGHTS))
    tensors = _lora_tensors(saved)
    for key in sorted(set(saved) - set(tensors)):  # the base's own head, which PEFT saves when it is tied
        head = model.out_head.weight
        if saved[key].shape != head.shape or not torch.equal(saved[key].to(head.dtype), head.detach().cpu()):
            raise ScratchLMError(
                f"{directory}: {key} is not this model's head (an adapter for another base?)"
            )
    gpt2 = _is_gpt2(model)
    if cfg.layers is None:  # PEFT also skips layers by naming only some; ours needs the list
        pattern = r"\.h\.(\d+)\." if gpt2 else r"\.layers\.(\d+)\."
        blocks = sorted({int(m.group(1)) for k in tensors if (m := re.search(pattern, k))})
        if blocks and blocks != list(range(len(model.trf_blocks))):
            cfg = LoRAConfig(**{**cfg.to_dict(), "layers": tuple(blocks)})
    report = apply_lora(model, cfg)
    if gpt2:
        ours = {".".join(_our_path(key)): tensor for key, tensor in tensors.items()}
    else:
        ours = _family_tensors(model, cfg, tensors)
        report = trainable_report(model)
    try:
        load_lora_state_dict(model, ours)
    except ScratchLMError as exc:
        raise ScratchLMError(f"{directory}: {exc} (an adapter for another base model?)") from None
    return report


def _lora_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The adapter's LoRA tensors, without the copy of a tied lm_head's own weight that PEFT saves beside
    them (`lm_head.base_layer.weight`)."""
    return {k: v for k, v in tensors.items() if not re.search(r"lm_head\.base_layer\.weight$", k)}


# ---- the modern families' names -----------------------------------------------------------------------
FAMILY_TARGETS = {  # our target -> the transformers modules PEFT targets for it
    "qkv": ("q_proj", "k_proj", "v_proj"),
    "out_proj": ("o_proj",),
    "ff_in": ("gate_proj", "up_proj"),
    "ff_out": ("down_proj",),
    "head": ("lm_head",),
}
QKV_MODULES = FAMILY_TARGETS["qkv"]
# our module path inside a block -> transformers' (q/k/v share our fused qkv)
FAMILY_MODULES = {
    "att.out_proj": "self_attn.o_proj",
    "ff.gate": "mlp.gate_proj",
    "ff.up": "mlp.up_proj",
    "ff.down": "mlp.down_proj",
}
_FAMILY_KEY = re.compile(
    r"(?:base_model\.model\.)?(?:model\.)?"
    r"(?:layers\.(?P<block>\d+)\.(?P<module>self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)|(?P<head>lm_head))"
    r"\.(?P<part>lora_A|lora_B)(?:\.[A-Za-z0-9_]+)?\.weight"
)


def _family_parts(
    model, name: str, A: torch.Tensor, B: torch.Tensor
) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(transformers module name, A, B) for one of our LoRA layers; q/k/v each get A and their rows of B."""
    if name == TARGETS["head"]:
        return [("lm_head", A, B)]
    m = re.fullmatch(r"trf_blocks\.(\d+)\.(.+)", name)
    prefix = f"model.layers.{m.group(1)}."
    if m.group(2) == "att.qkv":
        sizes = model.trf_blocks[int(m.group(1))].att.sizes
        return [(f"{prefix}self_attn.{p}", A, b) for p, b in zip(QKV_MODULES, B.split(sizes))]
    return [(prefix + FAMILY_MODULES[m.group(2)], A, B)]


def _family_key(key: str) -> tuple[str, str, str, str]:
    """(our target, block or "", transformers module, lora_A|lora_B) of a PEFT tensor name."""
    m = _FAMILY_KEY.fullmatch(key)
    if m is None:
        raise ScratchLMError(f"adapter tensor {key!r}: not a LoRA weight of a Llama-family module")
    if m["head"]:
        return "head", "", "lm_head", m["part"]
    module = m["module"].split(".")[1]
    target = next(t for t, names in FAMILY_TARGETS.items() if module in names)
    return target, m["block"], module, m["part"]


def _family_tensors(model, cfg: LoRAConfig, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """PEFT's tensors under our names. q/k/v adapters become one fused adapter per block: A stacked, B
    block-diagonal (rows of a projection PEFT did not adapt stay zero), its LoRA layer rebuilt at rank r x
    the projections present with alpha scaled to keep alpha / r; a gated MLP's gate or up left out by PEFT
    keeps a zero update."""
    from scratchlm.model.lora import LoRALinear

    ours: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    for key, tensor in tensors.items():
        target, block, module, part = _family_key(key)
        if target == "qkv":
            qkv.setdefault(block, {}).setdefault(module, {})[part] = tensor
        elif target == "head":
            ours[f"{TARGETS['head']}.{part}"] = tensor
        else:
            path = next(o for o, t in FAMILY_MODULES.items() if t.endswith(module))
            ours[f"trf_blocks.{block}.{path}.{part}"] = tensor
    modules = lora_modules(model)
    for name, layer in modules.items():  # a gate or up PEFT did not adapt: a zero update
        for part in ("lora_A", "lora_B"):
            if not name.endswith("att.qkv") and f"{name}.{part}" not in ours:
                ours[f"{name}.{part}"] = torch.zeros_like(getattr(layer, part))
    for block, parts in qkv.items():
        name = f"trf_blocks.{block}.att.qkv"
        layer = modules.get(name)
        if layer is None:
            raise ScratchLMError(f"adapter tensors for block {block}, which the adapter's layers leave out")
        present = [p for p in QKV_MODULES if p in parts]
        A = torch.cat([parts[p]["lora_A"] for p in present])
        B = torch.zeros(layer.base.out_features, A.shape[0], dtype=A.dtype)
        column = 0  # each projection's rows of B (views into it) get its own columns, the rest stays 0
        for p, rows in zip(QKV_MODULES, B.split(model.trf_blocks[int(block)].att.sizes)):
            if p in parts:
                b = parts[p]["lora_B"]
                rows[:, column : column + b.shape[1]] = b
                column += b.shape[1]
        n = len(present)
        alpha = cfg.alpha * (math.sqrt(n) if cfg.rslora else n)
        parent, _, attr = name.rpartition(".")
        fused = LoRALinear(layer.base, cfg.rank * n, alpha, cfg.dropout, cfg.rslora)
        setattr(model.get_submodule(parent), attr, fused)
        ours[f"{name}.lora_A"], ours[f"{name}.lora_B"] = A, B
    for name in lora_modules(model):
        if name.endswith("att.qkv") and f"{name}.lora_A" not in ours:
            block = name.split(".")[1]
            raise ScratchLMError(f"the adapter has no q/k/v tensors for block {block}")
    return ours


def _is_gpt2_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


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
