"""`scratchlm serve --model DIR [--host 127.0.0.1 --port 8000 --api-key KEY]`: the OpenAI-compatible API
(completions, chat, classify) with continuous batching, and a chat page at /."""

from __future__ import annotations

import argparse
import os
import sys

from scratchlm.cli.options import add_dtype_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", required=True, help="model, run or classifier directory, or gpt2…")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SCRATCHLM_API_KEY"),
        help="require 'Authorization: Bearer KEY' on every route (default: $SCRATCHLM_API_KEY)",
    )
    parser.add_argument("--name", help="the model id clients use (default: the directory's name)")
    parser.add_argument("--max-batch", type=int, default=8, help="requests decoded together (default 8)")
    parser.add_argument("--max-queue", type=int, default=64, help="waiting requests before 503 (default 64)")
    parser.add_argument(
        "--max-tokens-cap", "--max-tokens", dest="max_tokens", type=int, default=None, metavar="N",
        help="the most tokens a request may ask for (default: the context)",
    )  # fmt: skip
    parser.add_argument(
        "--max-body-bytes", type=int, default=1 << 20, help="request size cap (default 1 MiB)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_dtype_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scratchlm.errors import ScratchLMError
    from scratchlm.serve.openai_api import Limits
    from scratchlm.serve.server import build_service, check_exposure, serve

    if args.max_batch < 1 or args.max_queue < 1:
        raise ScratchLMError("--max-batch and --max-queue must be at least 1")
    service = build_service(
        args.model, args.name, args.device, args.max_batch, args.max_queue, dtype=args.dtype
    )
    warning = check_exposure(args.host, args.api_key)
    if warning:
        print(f"scratchlm: warning: {warning}", file=sys.stderr)
    kind = "classifier (POST /v1/classify)" if service.engine is None else "OpenAI API at /v1"
    print(
        f"serving {service.model_name!r} on http://{args.host}:{args.port}  —  {kind}, chat page at /",
        flush=True,
    )
    limits = Limits(max_body_bytes=args.max_body_bytes, max_tokens=args.max_tokens)
    serve(service, args.host, args.port, args.api_key, limits)
    return 0
