"""Benchmarks: `python -m benchmarks.bench_<thing>`; each run appends one JSON line to benchmarks/results/."""
