"""relay_child_cost: a child's CPU time per record, relay vs QueueHandler -> multiprocessing.Queue.

Both children log the same records; CPU time (``time.process_time``, all threads) is taken
from before the first logging call until everything has left the process (the relay's
frames written to the socket; the queue's feeder thread drained), so it includes each
side's share of encoding and sending. Target: ratio <= 0.5.

    .venv/bin/python benchmarks/relay_child_cost.py [records] [repeats]
"""

from __future__ import annotations

import logging.handlers
import sys
import time
from typing import Any

import _relay_common as common

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def relay_child(env_value: str, n: int, path: str, results: Any) -> None:
    pipeline = common.child_pipeline(env_value)
    if path == "handler":
        logger = common.quiet_logger("bench.relay", pipeline.logging_handler())
    else:
        logger = common.bridge_logger(pipeline)
    common.log_many(logger, 200)  # warm up code paths and the connection
    pipeline.force_flush(30_000)
    start = time.process_time()
    common.log_many(logger, n)
    pipeline.force_flush(60_000)
    results.put((time.process_time() - start) / n)
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
    host = common.relay_host()
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


if __name__ == "__main__":
    main()
