"""Helpers of the multi-process job tests."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop(procs: list[Any]) -> list[int | None]:
    """SIGTERM every worker process still running, then their exit codes (a process that
    does not stop within 30 s is killed)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=30))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait(timeout=10))
    return codes
