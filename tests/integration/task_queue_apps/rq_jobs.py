"""Jobs of the RQ tests: each opens a span, logs a WARNING and adds 1 to a counter."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from opentelemetry import metrics, trace


def work(n: int) -> int:
    with trace.get_tracer("tq").start_as_current_span("tq.work", attributes={"tq.n": n}):
        logging.getLogger("tq").warning("job %d", n, extra={"tq.n": n})
        metrics.get_meter("tq").create_counter("tq.done").add(1)
    return os.getpid()


def slow(marker_dir: str, seconds: float) -> str:
    """Say it started, take ``seconds``, then say it finished (files in ``marker_dir``)."""
    Path(marker_dir, "started").write_text("1")
    time.sleep(seconds)
    Path(marker_dir, "finished").write_text("1")
    return "done"
