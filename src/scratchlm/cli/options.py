"""Option groups that several commands share, so a setting has one name and one default everywhere."""

from __future__ import annotations

import argparse

from scratchlm.errors import ScratchLMError


def add_sampling_arguments(
    parser: argparse.ArgumentParser, temperature: float, top_p: float | None, max_new_tokens: int
) -> None:
    """How each next token is picked, with the same names in generate and chat (serve takes them per
    request, the judge from its config): the defaults differ only where the commands' uses do (a continuation
    is greedy, a conversation samples)."""
    group = parser.add_argument_group("sampling")
    group.add_argument(
        "--max-new-tokens", "-n", "--max-tokens", dest="max_new_tokens", type=int, default=max_new_tokens,
        metavar="N",
        help=f"tokens to generate at most (default {max_new_tokens}; --max-tokens is the same)",
    )  # fmt: skip
    group.add_argument(
        "--temperature", "-T", type=float, default=temperature, help=f"0 = greedy (default {temperature:g})"
    )
    group.add_argument(
        "--top-k", type=int, default=None, help="sample among the k most likely (default: all)"
    )
    group.add_argument(
        "--top-p", type=float, default=top_p, help=f"nucleus sampling mass (default {top_p or 'off'})"
    )
    group.add_argument("--repetition-penalty", type=float, default=1.0, help="above 1 discourages repeats")
    group.add_argument("--seed", type=int, default=None, help="for reproducible sampling")


def sampling_config(args: argparse.Namespace, **settings):
    """The GenerateConfig the sampling options describe (plus `settings`: stops, EOS, cache)."""
    from scratchlm.config import GenerateConfig

    return GenerateConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
        **settings,
    )


TORCH_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def dtype_name(text: str) -> str:
    """fp32, bf16 or fp16 (torch's names float32, bfloat16, float16 are read as those)."""
    short = {torch: short for short, torch in TORCH_NAMES.items()}.get(text, text)
    if short not in TORCH_NAMES:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from fp32, bf16, fp16)")
    return short


DTYPE_HELP = (
    "load the weights in this type (default fp32; bf16 halves the memory, and is fast only on hardware "
    "with bf16 units)"
)


def add_dtype_argument(parser: argparse.ArgumentParser, help: str = DTYPE_HELP) -> None:
    """--dtype fp32|bf16|fp16: the one name and spelling for a number type (generate, chat, serve, model)."""
    parser.add_argument("--dtype", type=dtype_name, default="fp32", metavar="{fp32,bf16,fp16}", help=help)


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    """The LLM judge of `scratchlm eval judge` (`finetune instruct` takes the same as --judge.KEY)."""
    group = parser.add_argument_group("LLM judge (any OpenAI-compatible endpoint: Ollama, vLLM, llama.cpp)")
    group.add_argument(
        "--judge-url", required=True, help="API base URL, e.g. http://127.0.0.1:11434/v1 (Ollama)"
    )
    group.add_argument("--judge-model", required=True, help="the judge's model name, e.g. llama3")
    group.add_argument("--judge-key", default=None, help="API key (sent as a Bearer token)")
    group.add_argument("--judge-timeout", type=float, default=60.0, help="seconds per request")
    group.add_argument("--judge-retries", type=int, default=3)


def judge_config(args: argparse.Namespace):
    """The JudgeConfig the options describe."""
    from scratchlm.config import JudgeConfig

    if not args.judge_url or not args.judge_model:
        raise ScratchLMError("the judge needs both --judge-url and --judge-model")
    return JudgeConfig(
        url=args.judge_url,
        model=args.judge_model,
        api_key=args.judge_key,
        timeout=args.judge_timeout,
        retries=args.judge_retries,
    )
