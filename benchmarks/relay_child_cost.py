"""relay_child_cost: a child's CPU time per record, relay vs QueueHandler -> multiprocessing.Queue.

Both children log the same records; CPU time (``time.process_time``, all threads) is taken
from before the first logging call until everything has left the process (the relay's
frames written to the socket; the queue's feeder thread drained), so it includes each
side's share of encoding and sending. The relay child also relays metrics, as one made by
``configure()`` does: 20 counters of 5 series each, collected, encoded and sent every
0.1 s (600 times as often as the default 60 s, so that the cost shows). Recording a value
costs both sides the same and is left out. Target: ratio <= 0.5.

    .venv/bin/python benchmarks/relay_child_cost.py [records] [repeats]
"""

from __future__ import annotations

import logging.handlers
import os
import subprocess
import sys
import time
from typing import Any

import _relay_common as common

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def relay_child(env_value: str, n: int, path: str, results: Any) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    pipeline = common.child_pipeline(env_value)
    reader = PeriodicExportingMetricReader(pipeline.metric_exporter, export_interval_millis=100)
    meters = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    meter = meters.get_meter("bench")
    for c in range(20):
        counter = meter.create_counter(f"bench.things.{c}")
        for series in range(5):
            counter.add(1, {"series": series})
    if path == "handler":
        logger = common.quiet_logger("bench.relay", pipeline.logging_handler())
    else:
        logger = common.bridge_logger(pipeline)
    common.log_many(logger, 200)  # warm up code paths and the connection
    pipeline.force_flush(30_000)
    start = time.process_time()
    common.log_many(logger, n)
    meters.force_flush(10_000)  # the last collection, as at exit
    pipeline.force_flush(60_000)
    results.put((time.process_time() - start) / n)
    meters.shutdown()
    pipeline.shutdown()


def baseline_child(queue: Any, n: int, results: Any) -> None:
    logger = common.quiet_logger("bench.baseline", logging.handlers.QueueHandler(queue))
    common.log_many(logger, 200)
    start = time.process_time()
    common.log_many(logger, n)
    queue.close()
    queue.join_thread()  # the feeder thread has pickled and written everything
    results.put((time.process_time() - start) / n)


def run_once(ctx: Any, target: Any, args: tuple[Any, ...], results: Any) -> float:
    proc = ctx.Process(target=target, args=(*args, results))
    proc.start()
    value = float(results.get(timeout=300))
    proc.join(60)
    return value


def main() -> None:
    ctx = common.mp_context()
    results = ctx.Queue()
    host = common.relay_host(metric_exporter=common.DiscardingMetricExporter())
    ours: list[float] = []
    bridge: list[float] = []
    baseline: list[float] = []
    try:
        for _ in range(REPEATS):
            ours.append(run_once(ctx, relay_child, (host.env_value, N, "handler"), results))
            bridge.append(run_once(ctx, relay_child, (host.env_value, N, "bridge"), results))
            queue = ctx.Queue()
            listener, _ = common.baseline_listener(queue, N + 200)
            baseline.append(run_once(ctx, baseline_child, (queue, N), results))
            listener.stop()
    finally:
        host.close(5)
    a, b, c = (common.median(v) * 1e6 for v in (ours, baseline, bridge))
    print(f"relay via the SDK logging bridge: {c:.2f} us/record (ratio {c / b:.2f})")
    print(
        f"relay_child_cost: ratio={a / b:.2f} (ours={a:.2f} us/record, baseline={b:.2f} us/record)"
    )


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
