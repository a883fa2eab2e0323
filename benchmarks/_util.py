"""Shared helpers for the benchmark scripts: timing subprocesses and the ratio line."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def run_python(code: str, *args: str, timeout: float = 120) -> float:
    """Wall time in seconds of ``python -c code args`` (raises if it fails)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        timeout=timeout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def ratio_line(name: str, ours: float, baseline: float, unit: str, digits: int = 3) -> str:
    """The last line every benchmark prints."""
    return (
        f"{name}: ratio={ours / baseline:.{digits}f} "
        f"(ours={ours:.{digits}f} {unit}, baseline={baseline:.{digits}f} {unit})"
    )
