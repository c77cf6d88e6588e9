"""The log of a run directory, shared by pretraining and every fine-tune: `metrics.jsonl` (one JSON object
per line, each with the wall-clock `time`) and the optional trackers of `train.loggers`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from scratchlm.train.trackers import numeric, open_trackers


class RunLog:
    """Appends records to <out>/metrics.jsonl and forwards step records to the trackers. A disabled log
    (every rank but 0 of a distributed run) writes nothing."""

    def __init__(self, out: Path, loggers: tuple[str, ...] = (), config: dict | None = None, enabled=True):
        self.enabled = enabled
        self.trackers = open_trackers(loggers, out, config or {}) if enabled else []
        self.file = (out / "metrics.jsonl").open("a", encoding="utf-8") if enabled else None

    def log(self, record: dict) -> None:
        if self.file is None:
            return
        self.file.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")
        self.file.flush()
        if "step" in record and "event" not in record:
            for tracker in self.trackers:
                tracker.log(numeric(record), record["step"])

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()
        self.trackers = []
        if self.file is not None:
            self.file.close()
            self.file = None


def read_metrics(out: Path) -> list[dict]:
    """The records of <out>/metrics.jsonl (a torn last line, from a kill mid-write, is skipped)."""
    path = Path(out) / "metrics.jsonl"
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
