"""`scratchlm model info SPEC`: what a model is, from its config alone — the architecture in words,
parameters, weight memory, the KV cache at a given context (and what multi-head attention would need), and
FLOPs per token. SPEC is a preset (`qwen3-0.6b`, `gpt2-small`, ...), a model or run directory, or a Hub name
(only its config.json is downloaded)."""

from __future__ import annotations

import argparse
import dataclasses

from scratchlm.config import PRESETS, ModelConfig, preset
from scratchlm.errors import ScratchLMError

DTYPES = ("float32", "bfloat16", "float16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    info = verbs.add_parser("info", help="architecture, parameters, KV-cache memory and FLOPs of a model")
    info.add_argument(
        "spec", metavar="SPEC", help=f"a preset ({', '.join(PRESETS)}), a directory or Hub name"
    )
    info.add_argument(
        "--context", type=int, default=None, help="tokens for the KV cache (default: its context)"
    )
    info.add_argument("--batch", type=int, default=1, help="sequences held in the KV cache")
    info.add_argument("--dtype", choices=DTYPES, default="float32", help="of the weights and the cache")
    info.set_defaults(run=run_info)


def describe(cfg: ModelConfig) -> str:
    """The architecture in words, GPT-2's parts and the modern ones alike."""
    if cfg.positions == "rope":
        scaling = "" if cfg.rope_type == "default" else f", {cfg.rope_type} scaling x{cfg.rope_factor:g}"
        positions = f"rotary positions (theta {cfg.rope_theta:,.0f}{scaling})"
    else:
        positions = "learned positions"
    norm = {"rmsnorm": "RMSNorm", "rmsnorm_offset": "RMSNorm (gain 1 + w)"}.get(cfg.norm, "LayerNorm")
    norm += {"sandwich": " before and after each sublayer", "post": " after each sublayer (post-norm)"}.get(
        cfg.norm_placement, ""
    )
    mlp = {"swiglu": "SwiGLU", "geglu": "GeGLU"}.get(cfg.mlp, "GELU") + f" MLP ({cfg.hidden_dim:,})"
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
    parts += [] if cfg.bias else ["no other biases"]
    parts += ["head tied to the embedding" if cfg.tie_embeddings else "untied head"]
    return ", ".join(parts)


def run_info(args: argparse.Namespace) -> int:
    from scratchlm.model.sizing import BYTES_PER, flops_per_token, kv_cache_bytes, parameter_count

    if args.spec in PRESETS:
        cfg, source = preset(args.spec), "preset"
    else:
        from scratchlm.formats.model_files import load_config

        cfg, source = load_config(args.spec), "config.json"
    tokens = cfg.context_length if args.context is None else args.context
    if tokens < 1 or args.batch < 1:
        raise ScratchLMError("--context and --batch must be at least 1")
    params = parameter_count(cfg)
    kv = kv_cache_bytes(cfg, tokens, args.batch, args.dtype)
    full = kv_cache_bytes(dataclasses.replace(cfg, n_kv_heads=None), tokens, args.batch, args.dtype)
    at = dataclasses.replace(cfg, context_length=tokens)
    gib = 2**30
    print(f"model        {args.spec} ({source})")
    print(f"architecture {describe(cfg)}")
    print(f"size         {cfg.n_layers} layers x {cfg.emb_dim:,} wide, vocabulary {cfg.vocab_size:,}, "
          f"context {cfg.context_length:,}")  # fmt: skip
    print(f"parameters   {params:,} ({params * BYTES_PER[args.dtype] / gib:.2f} GiB in {args.dtype})")
    saving = f": grouped-query attention keeps {cfg.kv_heads / cfg.n_heads:.0%} of it" if kv < full else ""
    print(f"KV cache     {kv / 2**20:,.1f} MiB for {args.batch} x {tokens:,} tokens in {args.dtype} "
          f"(multi-head attention: {full / 2**20:,.1f} MiB{saving})")  # fmt: skip
    if "sliding" in cfg.kinds and cfg.sliding_window < tokens:
        windowed = kv_cache_bytes(cfg, tokens, args.batch, args.dtype, window_only=True)
        print(f"             keeping only the window on sliding layers: {windowed / 2**20:,.1f} MiB "
              "(scratchlm's cache keeps every position)")  # fmt: skip
    print(f"FLOPs        {flops_per_token(at, training=False) / 1e9:,.2f} GFLOP per token forward at "
          f"{tokens:,} tokens (x3 to train)")  # fmt: skip
    return 0
