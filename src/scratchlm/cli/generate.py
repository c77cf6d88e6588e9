"""`scratchlm generate`: continue a prompt with a model directory or a Hub name, streaming the text."""

from __future__ import annotations

import argparse
import sys
import time

from scratchlm.config import GenerateConfig
from scratchlm.device import pick_device
from scratchlm.errors import ScratchLMError
from scratchlm.generate.generate import stream_text
from scratchlm.interop.model_files import load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", required=True, help="model directory, or a Hub name such as gpt2")
    parser.add_argument("--prompt", "-p", help="the text to continue (default: stdin)")
    parser.add_argument("--max-new-tokens", "-n", type=int, default=50)
    parser.add_argument("--temperature", "-T", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--repetition-penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="stop string (repeatable)"
    )
    parser.add_argument("--no-cache", action="store_true", help="recompute the whole context at every step")
    parser.add_argument("--ignore-eos", action="store_true", help="keep going after <|endoftext|>")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--stats", action="store_true", help="print tokens/s to stderr at the end")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = GenerateConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
        stop=tuple(args.stop),
        stop_at_eos=not args.ignore_eos,
        use_cache=not args.no_cache,
    )
    prompt = args.prompt
    if prompt is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise ScratchLMError("no prompt: give --prompt TEXT or pipe text on stdin")
        prompt = sys.stdin.read()
    if not prompt:
        raise ScratchLMError("the prompt is empty")
    model, tokenizer = load_model(args.model)
    if tokenizer is None:
        raise ScratchLMError(f"{args.model}: no tokenizer files found beside the model")
    model.to(pick_device(args.device))
    sys.stdout.write(prompt)
    sys.stdout.flush()
    start = time.perf_counter()
    pieces = 0
    for piece in stream_text(model, tokenizer, prompt, config):
        sys.stdout.write(piece)
        sys.stdout.flush()
        pieces += 1
    sys.stdout.write("\n")
    if args.stats:
        seconds = time.perf_counter() - start
        print(f"[{pieces} text pieces in {seconds:.2f} s]", file=sys.stderr)
    return 0
