"""Helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``): timing, and the
CPU every printed figure names."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def append_jsonl(path: str | Path | None, row: dict) -> None:
    """One benchmark row appended to a JSONL file (nothing when no file is named)."""
    if path:
        import json

        with open(path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")
