"""relay_throughput: records per second from one child's logging calls to the host's exporter.

Ours: child logging handler -> relay -> host ``RelayHost`` -> the pipeline
``otelkit.configure(relay=True)`` builds (coalescer -> ``BatchLogRecordProcessor``) -> a
no-op exporter. Baseline: ``QueueHandler`` -> ``multiprocessing.Queue`` -> ``QueueListener``
-> a no-op handler. The clock runs from the moment the (already started, already connected)
child is told to go until the exporter (ours) or the handler (baseline) has every record.
Ours ends with a ``force_flush`` of the batch processor as soon as the host has handed on the
last record, so its last partial batch does not wait out the processor's 1 s export timer
(latency, not throughput). Same record shape, same run, alternating; median of repeats.
Target: ratio >= 2.

    .venv/bin/python benchmarks/relay_throughput.py [records] [repeats]
"""

from __future__ import annotations

import functools
import logging.handlers
import sys
import time
from collections.abc import Callable
from typing import Any

import _relay_common as common

N = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def relay_child(env_value: str, n: int, ready: Any, go: Any) -> None:
    pipeline = common.child_pipeline(env_value)
    logger = common.quiet_logger("bench.relay", pipeline.logging_handler())
    pipeline.force_flush(30_000)  # connected
    ready.set()
    go.wait(60)
    common.log_many(logger, n)
    pipeline.shutdown()


def baseline_child(queue: Any, n: int, ready: Any, go: Any) -> None:
    logger = common.quiet_logger("bench.baseline", logging.handlers.QueueHandler(queue))
    ready.set()
    go.wait(60)
    common.log_many(logger, n)
    queue.close()
    queue.join_thread()


def timed(ctx: Any, target: Any, args: tuple[Any, ...], wait: Callable[[], None]) -> float:
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=target, args=(*args, ready, go))
    proc.start()
    if not ready.wait(60):
        raise RuntimeError("child did not get ready")
    start = time.perf_counter()
    go.set()
    wait()
    elapsed = time.perf_counter() - start
    proc.join(60)
    return elapsed


def until_exported(host: Any, batch: Any, exporter: common.CountingExporter) -> None:
    deadline = time.monotonic() + 300
    while host.stats["logs"] < N:  # polled: a 2 ms step costs the host's thread nothing
        if time.monotonic() > deadline:
            raise RuntimeError("records did not all arrive")
        time.sleep(0.002)
    batch.force_flush(60_000)
    if exporter.count < N:
        raise RuntimeError(f"only {exporter.count} of {N} records were exported")


def until_handled(handler: common.CountingHandler) -> None:
    if not handler.done.wait(300):
        raise RuntimeError("records did not all arrive")


def main() -> None:
    ctx = common.mp_context()
    ours: list[float] = []
    baseline: list[float] = []
    for _ in range(REPEATS):
        exporter = common.CountingExporter()
        pipeline, batch = common.host_log_pipeline(exporter)
        host = common.relay_host(pipeline)
        try:
            wait = functools.partial(until_exported, host, batch, exporter)
            ours.append(N / timed(ctx, relay_child, (host.env_value, N), wait))
        finally:
            host.close(5)
            pipeline.shutdown()
        queue = ctx.Queue()
        listener, handler = common.baseline_listener(queue, N)
        try:
            wait = functools.partial(until_handled, handler)
            baseline.append(N / timed(ctx, baseline_child, (queue, N), wait))
        finally:
            listener.stop()
    a, b = common.median(ours), common.median(baseline)
    print(
        f"relay_throughput: ratio={a / b:.2f} (ours={a:,.0f} records/s, baseline={b:,.0f} records/s)"
    )


if __name__ == "__main__":
    main()
