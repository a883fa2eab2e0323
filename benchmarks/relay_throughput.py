"""relay_throughput: records per second from children's logging calls to the host's exporter.

Ours: child logging handler -> relay -> host ``RelayHost`` -> the pipeline
``otelkit.configure(relay=True)`` builds (coalescer -> otelkit's batch processor, default
queue, back-pressure instead of drops) -> a no-op exporter. Baseline: ``QueueHandler`` ->
``multiprocessing.Queue`` -> ``QueueListener`` -> a no-op handler. ``--children K`` children
log ``records / K`` each, all at once. The clock runs from the moment the (already started,
already connected) children are told to go until the exporter (ours) or the handler
(baseline) has every record. Ours ends with a ``force_flush`` of the batch processor as soon
as the host has handed on the last record, so its last partial batch does not wait out the
processor's 1 s export timer (latency, not throughput). Same record shape, same run,
alternating; median of repeats. Target: ratio >= 2, with 1 child and with 4.

A line before the ratio gives the CPU time per record of each side (``time.process_time``,
all threads): the children's, from their first logging call until everything has left
them, and this process's over the clock's run (ours: the relay's serving thread, the
coalescer and the batch processor's export thread; the baseline: the listener thread).

    .venv/bin/python benchmarks/relay_throughput.py [--children K] [records] [repeats]
"""

from __future__ import annotations

import argparse
import functools
import logging.handlers
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import _relay_common as common

_parser = argparse.ArgumentParser()
_parser.add_argument("--children", type=int, default=1)
_parser.add_argument("records", type=int, nargs="?", default=30_000)
_parser.add_argument("repeats", type=int, nargs="?", default=5)
_options = _parser.parse_args()
CHILDREN, N, REPEATS = _options.children, _options.records, _options.repeats


def relay_child(env_value: str, n: int, source: str, ready: Any, go: Any, cpu: Any) -> None:
    pipeline = common.child_pipeline(env_value)
    logger = common.quiet_logger("bench.relay", pipeline.logging_handler())
    logger.info("warm-up %s", source)  # connects; the host counts it among the records
    pipeline.force_flush(30_000)
    ready.set()
    go.wait(60)
    start = time.process_time()
    common.log_many(logger, n, source)  # distinct per child: none of it is coalesced
    pipeline.shutdown()
    cpu.put(time.process_time() - start)


def baseline_child(queue: Any, n: int, source: str, ready: Any, go: Any, cpu: Any) -> None:
    logger = common.quiet_logger("bench.baseline", logging.handlers.QueueHandler(queue))
    ready.set()
    go.wait(60)
    start = time.process_time()
    common.log_many(logger, n, source)
    queue.close()
    queue.join_thread()
    cpu.put(time.process_time() - start)


class Run(NamedTuple):
    rate: float  # records/s
    child_cpu: float  # us/record, all children
    host_cpu: float  # us/record, this process


def timed(ctx: Any, target: Any, args: tuple[Any, ...], wait: Callable[[], None]) -> Run:
    """Start CHILDREN children logging N / CHILDREN records each; time until ``wait()``."""
    ready = [ctx.Event() for _ in range(CHILDREN)]
    go = ctx.Event()
    cpu = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(*args, N // CHILDREN, f"child-{k}", event, go, cpu))
        for k, event in enumerate(ready)
    ]
    for proc in procs:
        proc.start()
    if not all(event.wait(60) for event in ready):
        raise RuntimeError("a child did not get ready")
    start, host_start = time.perf_counter(), time.process_time()
    go.set()
    wait()
    elapsed = time.perf_counter() - start
    host = time.process_time() - host_start
    children = sum(cpu.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(60)
    return Run(N / elapsed, children / N * 1e6, host / N * 1e6)


def until_exported(host: Any, batch: Any, exporter: common.CountingExporter) -> None:
    deadline = time.monotonic() + 300
    while host.stats["logs"] < N + CHILDREN:  # polled: a 2 ms step costs the host's thread nothing
        if time.monotonic() > deadline:
            raise RuntimeError("records did not all arrive")
        time.sleep(0.002)
    batch.force_flush(60_000)
    if exporter.count < N + CHILDREN:
        raise RuntimeError(f"only {exporter.count} of {N + CHILDREN} records were exported")


def until_handled(handler: common.CountingHandler) -> None:
    if not handler.done.wait(300):
        raise RuntimeError("records did not all arrive")


def main() -> None:
    ctx = common.mp_context()
    ours: list[Run] = []
    baseline: list[Run] = []
    for _ in range(REPEATS):
        exporter = common.CountingExporter()
        pipeline, batch = common.host_log_pipeline(exporter)
        host = common.relay_host(pipeline)
        try:
            wait = functools.partial(until_exported, host, batch, exporter)
            ours.append(timed(ctx, relay_child, (host.env_value,), wait))
        finally:
            host.close(5)
            pipeline.shutdown()
        queue = ctx.Queue()
        listener, handler = common.baseline_listener(queue, N)
        try:
            wait = functools.partial(until_handled, handler)
            baseline.append(timed(ctx, baseline_child, (queue,), wait))
        finally:
            listener.stop()
    ours_cpu = [common.median([getattr(r, f) for r in ours]) for f in ("child_cpu", "host_cpu")]
    base_cpu = [common.median([getattr(r, f) for r in baseline]) for f in Run._fields[1:]]
    print(
        "cpu per record: ours children {:.2f} us + host {:.2f} us; baseline children {:.2f} us"
        " + listener process {:.2f} us".format(*ours_cpu, *base_cpu)
    )
    a, b = common.median([r.rate for r in ours]), common.median([r.rate for r in baseline])
    name = "relay_throughput" if CHILDREN == 1 else f"relay_throughput_{CHILDREN}_children"
    print(f"{name}: ratio={a / b:.2f} (ours={a:,.0f} records/s, baseline={b:,.0f} records/s)")


def shortcuts_off_line() -> str | None:
    """The same run with every SDK shortcut forced off (``OTELKIT_SDK_FALLBACKS=1``), in a
    fresh interpreter: its last line, or ``None`` when this run is that one."""
    if os.environ.get("OTELKIT_SDK_FALLBACKS", "").lower() in {"1", "true", "yes"}:
        return None
    env = {**os.environ, "OTELKIT_SDK_FALLBACKS": "1"}
    out = subprocess.run(
        [sys.executable, *sys.argv], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    off = shortcuts_off_line()
    if off is not None:
        print(f"with the SDK shortcuts off (OTELKIT_SDK_FALLBACKS=1): {off}")
    main()  # its last line: the ratio with the shortcuts on
