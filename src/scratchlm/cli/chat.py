"""`scratchlm chat --model DIR`: talk to a model in the terminal, its reply streamed token by token.

With the model's chat template (saved by `scratchlm finetune instruct`) turns are rendered as it was
trained; a base model continues a plain "User:/Assistant:" transcript. `--inspect` shows, beside each
token, its probability and the five most likely alternatives. Without a terminal, each line of stdin is
one message and replies are printed (scripts, tests)."""

from __future__ import annotations

import argparse
import sys

from scratchlm.cli.options import add_dtype_argument, add_sampling_arguments, sampling_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", required=True, help="model or run directory, or a Hub name")
    parser.add_argument("--template", help="alpaca, chatml or phi3 (default: the model's own, else none)")
    parser.add_argument("--system", help="a system message")
    add_sampling_arguments(parser, temperature=0.7, top_p=0.95, max_new_tokens=256)
    parser.add_argument(
        "--inspect", action="store_true", help="each token with its probability and alternatives"
    )
    parser.add_argument("--device", default="auto")
    add_dtype_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scratchlm.data.templates import get_template, load_template
    from scratchlm.device import pick_device
    from scratchlm.errors import ScratchLMError
    from scratchlm.formats.model_files import load_model
    from scratchlm.serve.chat import ChatSession, describe

    model, tokenizer = load_model(args.model, args.dtype)
    if tokenizer is None:
        raise ScratchLMError(f"{args.model}: no tokenizer beside the model")
    template = get_template(args.template) if args.template else None
    if template is None and Path(args.model).is_dir():
        template = load_template(args.model)
    config = sampling_config(args)
    session = ChatSession(model.to(pick_device(args.device)).eval(), tokenizer, template, config, args.system)
    interactive = sys.stdin.isatty()
    mode = f"template {template.name}" if template else "no chat template: completion mode"
    if interactive:
        print(f"chatting with {args.model} ({mode}); /help for commands, Ctrl-D to leave")
    try:
        while True:
            try:
                line = input("> " if interactive else "")
            except EOFError:
                break
            if not line.strip():
                continue
            if line.startswith("/"):
                answer = session.command(line)
                if answer is None:
                    break
                print(answer)
                continue
            try:
                for event in session.reply(line):
                    if args.inspect:
                        text = describe(event, tokenizer)
                        if text:
                            print(text, flush=True)
                    else:
                        sys.stdout.write(event.text)
                        sys.stdout.flush()
            except ScratchLMError as exc:
                print(f"[{exc}]")
                continue
            if args.inspect:
                print(session.last.text)
            print()
            if session.last.dropped:
                print(
                    f"[history trimmed: the {session.last.dropped} oldest messages no longer fit the context]"
                )
            if session.last.finish_reason == "length":
                print("[reply cut at the token limit: /max-tokens raises it]")
    except KeyboardInterrupt:
        print()
    finally:
        session.close()
    return 0
