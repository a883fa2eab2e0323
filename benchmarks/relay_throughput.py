"""relay_throughput: records per second from one child's logging calls to the host's exporter.

Ours: child logging handler -> relay -> host ``RelayHost`` -> ``BatchLogRecordProcessor`` ->
a no-op exporter. Baseline: ``QueueHandler`` -> ``multiprocessing.Queue`` ->
``QueueListener`` -> a no-op handler. The clock runs from the moment the (already
started, already connected) child is told to go until the host side has received every
record. Same record shape, same run; median of repeats. Target: ratio >= 2.

    .venv/bin/python benchmarks/relay_throughput.py [records] [repeats]
"""

from __future__ import annotations

import logging.handlers
import sys
import time
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


def timed(ctx: Any, target: Any, args: tuple[Any, ...], done: Any) -> float:
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=target, args=(*args, ready, go))
    proc.start()
    if not ready.wait(60):
        raise RuntimeError("child did not get ready")
    start = time.perf_counter()
    go.set()
    if not done.wait(300):
        raise RuntimeError("records did not all arrive")
    elapsed = time.perf_counter() - start
    proc.join(60)
    return elapsed


def main() -> None:
    ctx = common.mp_context()
    ours: list[float] = []
    baseline: list[float] = []
    for _ in range(REPEATS):
        exporter = common.CountingExporter()
        exporter.target = N
        host = common.relay_host(exporter)
        try:
            ours.append(N / timed(ctx, relay_child, (host.env_value, N), exporter.done))
        finally:
            host.close(5)
        queue = ctx.Queue()
        listener, handler = common.baseline_listener(queue, N)
        try:
            baseline.append(N / timed(ctx, baseline_child, (queue, N), handler.done))
        finally:
            listener.stop()
    a, b = common.median(ours), common.median(baseline)
    print(
        f"relay_throughput: ratio={a / b:.2f} (ours={a:,.0f} records/s, baseline={b:,.0f} records/s)"
    )


if __name__ == "__main__":
    main()
