"""What every benchmark shares: `race` (alternating median timing), a plain-text table, and the results line
(run info, then appended to benchmarks/results/). Knows nothing of what a benchmark measures."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000


def race(fns: dict[str, Callable[[], object]], repeats: dict[str, int]) -> dict[str, tuple[float, object]]:
    """Run each function `repeats[name]` times, alternating the order every round; (median s, last result)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    out: dict[str, object] = {}
    names = list(fns)
    for r in range(max(repeats.values())):
        for name in names if r % 2 == 0 else names[::-1]:
            if r < repeats[name]:
                t0 = time.perf_counter()
                out[name] = fns[name]()
                times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(times[name]), out[name]) for name in names}


def print_table(title: str, rows: list[list], note: str, digits: int = 3) -> None:
    """Print `rows` (the first is the header) under `== title ==`: the first column left-aligned, the others
    right-aligned, floats with `digits` decimals; then `note`."""
    cells = [[f"{x:.{digits}f}" if isinstance(x, float) else str(x) for x in row] for row in rows]
    widths = [max(len(c) for c in col) for col in zip(*cells)]
    print(f"\n== {title} ==")
    for row in cells:
        print("  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]))
    print(note)


def run_info(bench: str, packages: Iterable[str]) -> dict:
    """The head of a results line: which benchmark, commit (and whether tracked files were modified), date,
    machine, Python and the versions of `packages`."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    modified = git("status", "--porcelain", "--untracked-files=no")
    return {
        "bench": bench,
        "commit": git("rev-parse", "HEAD") or "unknown",
        "tracked_files_modified": None if modified is None else bool(modified),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "python": platform.python_version(),
        "versions": {pkg: version(pkg) for pkg in packages},
    }


def append_result(path: Path, record: dict) -> None:
    """Append `record` to the JSON-lines file `path` and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    print(f"\nappended one line to {path.relative_to(ROOT)}")


# ---- a quiet machine -------------------------------------------------------------------------------
NOISY_CORES = 0.25  # other processes busier than this during a block: its numbers are marked unreliable


def _busy_jiffies() -> int | None:
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return user + nice + system + irq + softirq + steal


class OtherLoad:
    """Cores kept busy by other processes while the block runs: /proc/stat's busy time minus our own CPU
    time. (The 1-minute load average also counts this process and lags a minute behind.)"""

    def __enter__(self) -> OtherLoad:
        self.busy, self.own, self.t0 = _busy_jiffies(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, elapsed = _busy_jiffies(), time.perf_counter() - self.t0
        own = time.process_time() - self.own
        if busy is None or self.busy is None:
            self.cores = None
            return
        total = (busy - self.busy) / os.sysconf("SC_CLK_TCK")
        self.cores = round(max(0.0, total - own) / elapsed, 2)


def wait_for_quiet(max_wait: float, threshold: float = 0.5) -> dict:
    """Wait (up to max_wait s) until other processes keep less than `threshold` cores busy: with OpenMP
    threads on a shared 2-core machine, one busy neighbour can slow a small forward pass 50x."""
    t0 = time.perf_counter()
    while True:
        with OtherLoad() as other:
            time.sleep(1.0)
        waited = time.perf_counter() - t0
        if other.cores is None:  # no /proc/stat: fall back on the load average
            other.cores = os.getloadavg()[0]
        if other.cores <= threshold or waited >= max_wait:
            break
    load = {"loadavg_1m": round(os.getloadavg()[0], 2), "other_cores_busy": other.cores}
    load["waited_s"] = round(waited, 1)
    print(f"  load before: {load}", flush=True)
    return load
