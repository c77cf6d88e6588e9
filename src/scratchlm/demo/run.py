"""`run_demo`: the chosen stages in the table's order, each timed; their results merged into out/demo.json
(a stage run alone keeps the others' earlier results) and the demo's report written."""

from __future__ import annotations

import json
import math
import time

from scratchlm.demo.config import STAGE_NAMES, DemoConfig
from scratchlm.demo.report import write_demo_report
from scratchlm.demo.stages import STAGES, check_needs
from scratchlm.errors import ScratchLMError


def run_demo(cfg: DemoConfig) -> dict:
    """Run the chosen stages; return what each reported (also written to out/demo.json)."""
    unknown = [s for s in cfg.stages if s not in STAGE_NAMES]
    if unknown:
        raise ScratchLMError(f"unknown stage(s) {unknown}; choose from {', '.join(STAGE_NAMES)}")
    if cfg.minutes <= 0:
        raise ScratchLMError(f"--minutes must be positive, got {cfg.minutes}")
    if cfg.with_source is not None and (not 0 < cfg.with_source < math.inf or cfg.dataset):
        raise ScratchLMError("--with-source takes a positive number of MB, and not with --dataset")
    cfg.out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for number, stage in enumerate(STAGES, 1):
        if stage.name not in cfg.stages:
            continue
        started = time.perf_counter()
        cfg.say(f"\n== {number}. {stage.name}")
        check_needs(cfg, stage)
        results[stage.name] = {**stage.run(cfg), "seconds": round(time.perf_counter() - started, 1)}
    summary = cfg.out / "demo.json"
    previous = json.loads(summary.read_text()) if summary.is_file() else {}
    everything = {**previous, **results}
    summary.write_text(json.dumps(everything, indent=1, default=str))
    write_demo_report(cfg, everything)
    return results
