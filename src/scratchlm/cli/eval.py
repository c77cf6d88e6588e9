"""`scratchlm eval judge|metrics --responses FILE`: score a responses.json (a list of {instruction, input,
reference, response}, as `finetune instruct` writes it) with an LLM judge, or by exact match and ROUGE-L."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scratchlm.errors import ScratchLMError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from scratchlm.cli.options import add_judge_arguments

    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    judge = verbs.add_parser(
        "judge", help="score responses 0-100 with an LLM over an OpenAI-compatible endpoint"
    )
    judge.add_argument("--responses", "-r", required=True, help="responses.json")
    judge.add_argument("--out", "-o", help="write the records with their judge_score here (default: print)")
    add_judge_arguments(judge)
    judge.set_defaults(run=run_judge)
    metrics = verbs.add_parser("metrics", help="exact match and ROUGE-L of responses against references")
    metrics.add_argument("--responses", "-r", required=True, help="responses.json")
    metrics.set_defaults(run=run_metrics)


def read_responses(path: str) -> list[dict]:
    from scratchlm.files import read_json

    records = read_json(path)
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("reference"), str) and isinstance(r.get("response"), str)
        for r in records
    ):
        raise ScratchLMError(f"{path}: expected a JSON list of objects with 'reference' and 'response' text")
    return records


def run_judge(args: argparse.Namespace) -> int:
    from scratchlm.cli.options import judge_config
    from scratchlm.eval.judge import judge_responses
    from scratchlm.files import write_json

    records = read_responses(args.responses)
    cfg = judge_config(args)

    def progress(i: int, result: dict) -> None:
        score = "unscored" if result["score"] is None else result["score"]
        print(f"[{i + 1}/{len(records)}] {score}", file=sys.stderr)

    judged = judge_responses(records, cfg, on_progress=progress)
    for record, result in zip(records, judged["results"]):
        record["judge_score"] = result["score"]
    if args.out:
        write_json(Path(args.out), records)
    mean = "n/a" if judged["mean_score"] is None else f"{judged['mean_score']:.2f}"
    print(f"judge {cfg.model}: mean score {mean} over {judged['scored']} of {len(records)} responses")
    return 0


def run_metrics(args: argparse.Namespace) -> int:
    from scratchlm.eval.metrics import text_scores

    records = read_responses(args.responses)
    scores = text_scores([r["response"] for r in records], [r["reference"] for r in records])
    em, clause, rouge = scores["exact_match"], scores["first_clause_match"], scores["rouge_l"]
    print(
        f"exact match {em:.1%}, first-clause match {clause:.1%}, ROUGE-L {rouge:.3f} "
        f"over {scores['n']} responses"
    )
    return 0
