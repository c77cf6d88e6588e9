"""`scratchlm generate`: continue a prompt with a model directory or a Hub name, streaming the text. With
`--chat`, the prompt is an instruction wrapped in the model's chat template and only the reply is shown."""

from __future__ import annotations

import argparse
import sys
import time

from scratchlm.cli.options import add_dtype_argument, add_sampling_arguments, sampling_config
from scratchlm.config import GenerateConfig
from scratchlm.device import pick_device
from scratchlm.errors import ScratchLMError
from scratchlm.formats.model_files import load_model
from scratchlm.generate.generate import stream_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", required=True, help="model directory, or a Hub name such as gpt2")
    parser.add_argument("--prompt", "-p", help="the text to continue (default: stdin)")
    add_sampling_arguments(parser, temperature=0.0, top_p=None, max_new_tokens=50)
    parser.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="stop string (repeatable)"
    )
    parser.add_argument("--no-cache", action="store_true", help="recompute the whole context at every step")
    parser.add_argument("--ignore-eos", action="store_true", help="keep going after <|endoftext|>")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    add_dtype_argument(parser)
    parser.add_argument("--stats", action="store_true", help="print tokens/s to stderr at the end")
    chat = parser.add_argument_group("instructions (models from `scratchlm finetune instruct`)")
    chat.add_argument(
        "--chat", action="store_true", help="wrap the prompt in the model's chat template; print the reply"
    )
    chat.add_argument("--input", default="", help="with --chat: the instruction's input (Alpaca's context)")
    chat.add_argument("--template", help="with --chat: alpaca, chatml or phi3 (default: the model's own)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = sampling_config(
        args, stop=tuple(args.stop), stop_at_eos=not args.ignore_eos, use_cache=not args.no_cache
    )
    prompt = args.prompt
    if prompt is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise ScratchLMError("no prompt: give --prompt TEXT or pipe text on stdin")
        prompt = sys.stdin.read()
    if not prompt:
        raise ScratchLMError("the prompt is empty")
    template = None
    if args.chat:
        prompt, config, template = chat_prompt(args, prompt, config)
    elif args.input or args.template:
        raise ScratchLMError("--input and --template go with --chat")
    model, tokenizer = load_model(args.model, args.dtype)
    if tokenizer is None:
        raise ScratchLMError(f"{args.model}: no tokenizer files found beside the model")
    from scratchlm.data.templates import encode_prompt

    ids = encode_prompt(tokenizer, prompt, template)
    model.to(pick_device(args.device))
    if not args.chat:  # a continuation is shown after its prompt; a reply stands alone
        sys.stdout.write(prompt)
        sys.stdout.flush()
    start = time.perf_counter()
    pieces = 0
    for piece in stream_text(model, tokenizer, ids, config):
        sys.stdout.write(piece)
        sys.stdout.flush()
        pieces += 1
    sys.stdout.write("\n")
    if args.stats:
        seconds = time.perf_counter() - start
        print(f"[{pieces} text pieces in {seconds:.2f} s]", file=sys.stderr)
    return 0


def chat_prompt(args: argparse.Namespace, instruction: str, config: GenerateConfig):
    """(the templated prompt, config with the template's stop strings added, the template) for `--chat`."""
    from pathlib import Path

    from scratchlm.data.templates import alpaca_messages, get_template, load_template

    if args.template:
        template = get_template(args.template)
    else:
        template = load_template(args.model) if Path(args.model).is_dir() else None
        if template is None:
            raise ScratchLMError(
                f"{args.model}: no chat template beside the model; pass --template alpaca|chatml|phi3"
            )
    prompt = template.generation_prompt(alpaca_messages(instruction.strip(), args.input))
    return prompt, config.replace(stop=(*config.stop, *template.stop)), template
