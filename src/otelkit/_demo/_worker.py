"""A demo worker process: a relay child running jobs and a flaky upstream's warnings."""

from __future__ import annotations

import logging
import threading
import time
from multiprocessing.sharedctypes import Synchronized
from typing import Any

__all__ = ["flaky_upstream", "worker_main"]

UPSTREAM_WARNING = "upstream %s timed out after %d ms"


def flaky_upstream(stop: threading.Event, emitted: Any, rate: float = 300.0) -> None:
    """Log the same warning ``rate`` times a second until ``stop`` (counted in ``emitted``)."""
    log = logging.getLogger("otelkit.demo.upstream")
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        log.warning(UPSTREAM_WARNING, "pricing-api", 250)
        with emitted.get_lock():
            emitted.value += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)


def worker_main(
    index: int,
    db_url: str,
    traceparent: dict[str, str],
    stop: Any,
    emitted: Synchronized[int],
    queue: str | None = None,
) -> None:
    """Entry point of a spawned worker: exports through the parent's relay (OTELKIT_RELAY).

    It serves only ``queue`` (the run's own, default ``demo``), so jobs of other
    applications or other demo runs in a shared database are never touched.
    """
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    import otelkit
    from otelkit._demo._jobs import QUEUE, build_store

    logging.getLogger().setLevel(logging.INFO)
    telemetry = otelkit.configure(service_name="otelkit-demo-worker")

    class _Count(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.name.startswith("otelkit.demo.jobs"):
                with emitted.get_lock():
                    emitted.value += 1
            return True

    count_filter = _Count()
    logging.getLogger("otelkit.demo.jobs").addFilter(count_filter)
    store = build_store(db_url, queue=queue or QUEUE).store
    worker = store.worker(concurrency=2, batch=5, poll_interval=0.05, shutdown_timeout=5.0)
    upstream_stop = threading.Event()
    tracer = trace.get_tracer("otelkit.demo")
    with tracer.start_as_current_span(f"worker {index}", context=extract(traceparent)):
        upstream = threading.Thread(
            target=flaky_upstream, args=(upstream_stop, emitted), daemon=True
        )
        upstream.start()
        runner = threading.Thread(target=worker.run, daemon=True)
        runner.start()
        stop.wait()
        worker.stop()
        runner.join(10)
        upstream_stop.set()
        upstream.join(5)
    store.close()
    telemetry.shutdown()
