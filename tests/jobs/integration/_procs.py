"""Helpers of the multi-process job tests.

A worker app calls :func:`mark_ready` just before ``Worker.run()`` (which installs the
SIGTERM handler), and :func:`stop` signals a process only once it got that far: a SIGTERM
that reaches a process still importing kills it (exit code -15) on a loaded machine.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

READY_DIR_ENV = "OTELKIT_TEST_READY_DIR"
if READY_DIR_ENV not in os.environ:  # in the test process; a worker inherits it
    os.environ[READY_DIR_ENV] = tempfile.mkdtemp(prefix="otelkit-test-workers-")
    atexit.register(shutil.rmtree, os.environ[READY_DIR_ENV], True)
READY_DIR = Path(os.environ[READY_DIR_ENV])


def mark_ready() -> None:
    """In a worker process: say that its worker is about to run."""
    folder = os.environ.get(READY_DIR_ENV)
    if folder:
        Path(folder, str(os.getpid())).touch()


def stop(procs: list[Any], startup: float = 120.0) -> list[int | None]:
    """SIGTERM every worker process still running once it is ready (waiting at most
    ``startup`` seconds for it), then their exit codes (a process that does not stop
    within 30 s is killed)."""
    deadline = time.monotonic() + startup
    for proc in procs:
        marker = READY_DIR / str(proc.pid)
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        marker.unlink(missing_ok=True)
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
