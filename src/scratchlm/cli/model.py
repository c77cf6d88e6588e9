"""`scratchlm model info SPEC`: what a model is, from its config alone — the architecture in words,
parameters, weight memory, the KV cache at a given context (and what multi-head attention would need), and
FLOPs per token. `scratchlm model diff A B`: what really differs between two architectures (norms and their
placement, positions, attention heads and window pattern, MLP, tying, soft-caps...), with both sizes.

SPEC is a preset (`qwen3-0.6b`, `gpt2-small`, ...), a model or run directory, or a Hub name (only its
config.json is downloaded)."""

from __future__ import annotations

import argparse
import dataclasses

from scratchlm.cli.options import TORCH_NAMES, add_dtype_argument
from scratchlm.config import PRESETS, ModelConfig, preset
from scratchlm.errors import ScratchLMError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    info = verbs.add_parser("info", help="architecture, parameters, KV-cache memory and FLOPs of a model")
    info.add_argument(
        "spec", metavar="SPEC", help=f"a preset ({', '.join(PRESETS)}), a directory or Hub name"
    )
    _add_memory_options(info, context=None, context_help="the model's context")
    info.add_argument(
        "--batch-size", "--batch", dest="batch", type=int, default=1, metavar="B",
        help="sequences held in the KV cache",
    )  # fmt: skip
    info.set_defaults(run=run_info)
    diff = verbs.add_parser("diff", help="what really differs between two models' architectures, and sizes")
    diff.add_argument("a", metavar="A", help="a preset, a directory or Hub name")
    diff.add_argument("b", metavar="B", help="another")
    _add_memory_options(diff, context=8192, context_help="8192")
    diff.set_defaults(run=run_diff)


def _add_memory_options(parser: argparse.ArgumentParser, context: int | None, context_help: str) -> None:
    """What the memory figures are computed for: the tokens in the KV cache and the number type."""
    parser.add_argument(
        "--context-length", "--context", dest="context", type=int, default=context, metavar="N",
        help=f"tokens for the KV cache (default {context_help})",
    )  # fmt: skip
    add_dtype_argument(parser, "of the weights and the cache (default fp32)")


def _scaling(cfg: ModelConfig) -> str:
    return "" if cfg.rope_type == "default" else f", {cfg.rope_type} scaling x{cfg.rope_factor:g}"


def describe(cfg: ModelConfig) -> str:
    """The architecture in words, GPT-2's parts and the modern ones alike."""
    if cfg.positions == "rope":
        positions = f"rotary positions (theta {cfg.rope_theta:,.0f}{_scaling(cfg)})"
    else:
        positions = "learned positions"
    norm = {"rmsnorm": "RMSNorm", "rmsnorm_offset": "RMSNorm (gain 1 + w)"}.get(cfg.norm, "LayerNorm")
    norm += {"sandwich": " before and after each sublayer", "post": " after each sublayer (post-norm)"}.get(
        cfg.norm_placement, ""
    )
    mlp = {"swiglu": "SwiGLU", "geglu": "GeGLU", "relu2": "ReLU²"}.get(
        cfg.mlp, "GELU"
    ) + f" MLP ({cfg.hidden_dim:,})"
    if cfg.kv_heads == cfg.n_heads:
        attention = f"multi-head attention, {cfg.n_heads} heads of {cfg.head_dim}"
    else:
        kind = "multi-query" if cfg.kv_heads == 1 else "grouped-query"
        attention = (
            f"{kind} attention, {cfg.n_heads} query : {cfg.kv_heads} key/value heads of {cfg.head_dim}"
        )
    parts = [positions, norm, mlp, attention]
    sliding = cfg.kinds.count("sliding")
    if sliding:
        local = f", rope theta {cfg.rope_local_theta:,.0f} there" if cfg.rope_local_theta else ""
        parts += [
            f"a {cfg.sliding_window:,}-token sliding window on {sliding} of {cfg.n_layers} layers{local}"
        ]
    parts += (
        [f"QK-norm ({'per head' if cfg.qk_norm_scope == 'head' else 'whole projections'})"]
        if cfg.qk_norm
        else []
    )
    parts += ["embeddings x sqrt(width)"] if cfg.emb_scale else []
    parts += [f"scores / sqrt({cfg.attn_scalar:g})"] if cfg.attn_scalar is not None else []
    parts += [f"attention soft-cap {cfg.attn_softcap:g}"] if cfg.attn_softcap is not None else []
    parts += [f"logit soft-cap {cfg.logit_softcap:g}"] if cfg.logit_softcap is not None else []
    parts += ["q/k/v biases"] if cfg.qkv_bias else []
    k = cfg.value_embeddings
    parts += [f"{k} value embedding{'s' if k > 1 else ''} (first and last {k} layers)"] if k else []
    parts += [] if cfg.bias else ["no other biases"]
    parts += ["head tied to the embedding" if cfg.tie_embeddings else "untied head"]
    return ", ".join(parts)


def find_config(spec: str) -> tuple[ModelConfig, str]:
    """(config, "preset" or "config.json") of a preset name, a model or run directory, or a Hub name."""
    if spec in PRESETS:
        return preset(spec), "preset"
    from scratchlm.formats.model_files import load_config

    return load_config(spec), "config.json"


def aspects(cfg: ModelConfig) -> dict[str, str]:
    """The architecture in parts, each in words: what `model diff` compares."""
    if cfg.positions == "rope":
        local = f"; sliding layers {cfg.rope_local_theta:,.0f}" if cfg.rope_local_theta is not None else ""
        positions = f"rotary, theta {cfg.rope_theta:,.0f}{_scaling(cfg)}{local}"
    else:
        positions = f"learned, {cfg.context_length:,} positions"
    norm = {"rmsnorm": "RMSNorm", "rmsnorm_offset": "RMSNorm, gain 1 + w"}.get(cfg.norm, "LayerNorm")
    placement = {"pre": "before each sublayer", "sandwich": "before and after each sublayer",
                 "post": "after each sublayer (post-norm)"}[cfg.norm_placement]  # fmt: skip
    sliding = cfg.kinds.count("sliding")
    pattern = "".join("S" if kind == "sliding" else "F" for kind in cfg.kinds)
    window = (
        f"window {cfg.sliding_window:,} on {sliding} of {cfg.n_layers} layers ({pattern})"
        if sliding
        else "full"
    )
    qk = "none" if not cfg.qk_norm else ("per head" if cfg.qk_norm_scope == "head" else "whole projections")
    caps = [f"scores {cfg.attn_softcap:g}"] if cfg.attn_softcap is not None else []
    caps += [f"logits {cfg.logit_softcap:g}"] if cfg.logit_softcap is not None else []
    return {
        "size": f"{cfg.n_layers} layers x {cfg.emb_dim:,}, vocabulary {cfg.vocab_size:,}",
        "context": f"{cfg.context_length:,}",
        "positions": positions,
        "norm": f"{norm} (eps {cfg.norm_eps:g}), {placement}",
        "MLP": {"swiglu": "SwiGLU", "geglu": "GeGLU", "relu2": "ReLU²"}.get(cfg.mlp, "GELU")
        + f", {cfg.hidden_dim:,} wide",
        "attention": f"{cfg.n_heads} query : {cfg.kv_heads} key/value heads of {cfg.head_dim}",
        "attention span": window,
        "QK-norm": qk,
        "score scale": f"1/sqrt({cfg.attn_scalar:g})" if cfg.attn_scalar is not None else "1/sqrt(head size)",
        "soft-caps": ", ".join(caps) or "none",
        "biases": ("q/k/v" if cfg.qkv_bias else "no q/k/v") + (", projections and MLP" if cfg.bias else ""),
        "embedding": ("x sqrt(width), " if cfg.emb_scale else "")
        + ("head tied" if cfg.tie_embeddings else "head untied"),
        "value embeds": (
            f"{cfg.value_embeddings} (first and last layers)" if cfg.value_embeddings else "none"
        ),
    }


def run_diff(args: argparse.Namespace) -> int:
    from scratchlm.model.sizing import BYTES_PER, kv_cache_bytes, parameter_count

    if args.context < 1:
        raise ScratchLMError("--context-length must be at least 1")
    dtype = TORCH_NAMES[args.dtype]
    (a, _), (b, _) = find_config(args.a), find_config(args.b)
    left, right = aspects(a), aspects(b)
    differ = [key for key in left if left[key] != right[key]]
    width = max(len(key) for key in left)
    print(f"{'':{width}}  A: {args.a}\n{'':{width}}  B: {args.b}")
    if not differ:
        print("the same architecture" + (" and size" if a == b else ""))
    for key in differ:
        print(f"{key:{width}}  A: {left[key]}\n{'':{width}}  B: {right[key]}")
    same = [key for key in left if key not in differ]
    if same and differ:
        print(f"{'same':{width}}  {', '.join(same)}")
    gib, mib = 2**30, 2**20
    for label, cfg in (("A", a), ("B", b)):
        params = parameter_count(cfg)
        kv = kv_cache_bytes(cfg, args.context, 1, dtype)
        weights = params * BYTES_PER[dtype] / gib
        print(f"{label}: {params:,} parameters, {weights:.2f} GiB of weights and {kv / mib:,.1f} MiB of KV "
              f"cache at {args.context:,} tokens in {dtype}")  # fmt: skip
    return 0


def run_info(args: argparse.Namespace) -> int:
    from scratchlm.model.sizing import BYTES_PER, flops_per_token, kv_cache_bytes, parameter_count

    cfg, source = find_config(args.spec)
    tokens = cfg.context_length if args.context is None else args.context
    if tokens < 1 or args.batch < 1:
        raise ScratchLMError("--context-length and --batch-size must be at least 1")
    dtype = TORCH_NAMES[args.dtype]
    params = parameter_count(cfg)
    kv = kv_cache_bytes(cfg, tokens, args.batch, dtype)
    full = kv_cache_bytes(dataclasses.replace(cfg, n_kv_heads=None), tokens, args.batch, dtype)
    at = dataclasses.replace(cfg, context_length=tokens)
    gib = 2**30
    print(f"model        {args.spec} ({source})")
    print(f"architecture {describe(cfg)}")
    print(f"size         {cfg.n_layers} layers x {cfg.emb_dim:,} wide, vocabulary {cfg.vocab_size:,}, "
          f"context {cfg.context_length:,}")  # fmt: skip
    print(f"parameters   {params:,} ({params * BYTES_PER[dtype] / gib:.2f} GiB in {dtype})")
    saving = f": grouped-query attention keeps {cfg.kv_heads / cfg.n_heads:.0%} of it" if kv < full else ""
    print(f"KV cache     {kv / 2**20:,.1f} MiB for {args.batch} x {tokens:,} tokens in {dtype} "
          f"(multi-head attention: {full / 2**20:,.1f} MiB{saving})")  # fmt: skip
    if "sliding" in cfg.kinds and cfg.sliding_window < tokens:
        windowed = kv_cache_bytes(cfg, tokens, args.batch, dtype, window_only=True)
        print(f"             keeping only the window on sliding layers: {windowed / 2**20:,.1f} MiB "
              "(scratchlm's cache keeps every position)")  # fmt: skip
    print(f"FLOPs        {flops_per_token(at, training=False) / 1e9:,.2f} GFLOP per token forward at "
          f"{tokens:,} tokens (x3 to train)")  # fmt: skip
    return 0
