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


def installed_bytecode() -> dict[str, str]:
    """Compile otelkit's modules to bytecode, as an install would, and return an environment
    for child processes that uses it.

    The SDK's modules in site-packages come with bytecode; with PYTHONDONTWRITEBYTECODE set
    (as on some machines) an editable otelkit would be compiled from source in every fresh
    process, which no installed copy pays. Start-up comparisons must not charge us for that.
    """
    import compileall
    import os
    from pathlib import Path

    import otelkit

    package = Path(otelkit.__file__).parent
    compileall.compile_dir(str(package), quiet=1)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
