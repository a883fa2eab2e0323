"""Host programs for the end-to-end relay tests: ``python relay_programs.py ROLE ENDPOINT ...``.

Each runs a real relay host (``otelkit.configure(relay=True)``) exporting to ENDPOINT (a
real Collector), starts real children, and prints one JSON line with what it counted.
Every wait is bounded.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any

from opentelemetry import metrics

import otelkit

TAG = "relay.e2e.tag"
SEQ = "relay.e2e.seq"


def _report(telemetry: otelkit.Telemetry, **extra: Any) -> None:
    host = telemetry.relay_host
    stats = dict(host.stats) if host is not None else {}
    ok = telemetry.shutdown(timeout=20)
    drops = {f"{signal}/{reason}": n for (signal, reason), n in telemetry.dropped().items()}
    exported = telemetry.export_counts()  # (accepted by the Collector, failed), by signal
    report = {"stats": stats, "drops": drops, "shutdown_ok": ok, "exported": exported, **extra}
    print(json.dumps(report), flush=True)


# ---- children -------------------------------------------------------------------------


def log_distinct(tag: str, count: int, configure: bool) -> None:
    """Log ``count`` distinct records tagged ``tag``, then return (no explicit flush)."""
    if configure:
        otelkit.configure(service_name="relay-e2e-child")
    logger = logging.getLogger("relay.e2e")
    for i in range(count):
        logger.warning("record %d from %s", i, tag, extra={TAG: tag, SEQ: i})


def count_things(tag: str, configure: bool) -> None:
    """Add 7 to a counter tagged with this child's ``tag``."""
    if configure:
        otelkit.configure(service_name="relay-e2e-child")
    metrics.get_meter("relay.e2e").create_counter("relay.e2e.things").add(7, {TAG: tag})


def _pool_work(n: int) -> int:
    logging.getLogger("relay.e2e").warning("pool item %d", n, extra={TAG: "pool", SEQ: n})
    return n


def _pool_init() -> None:
    otelkit.configure(service_name="relay-e2e-pool")


# ---- hosts ----------------------------------------------------------------------------


def _host(endpoint: str, **options: Any) -> otelkit.Telemetry:
    return otelkit.configure(
        service_name="relay-e2e-host", relay=True, endpoint=endpoint, **options
    )


def flood(endpoint: str, method: str, children: int, count: int) -> None:
    """``children`` processes log ``count`` distinct records each."""
    telemetry = _host(endpoint)
    ctx = multiprocessing.get_context(method)
    procs = [
        ctx.Process(target=log_distinct, args=(f"c{n}", count, method != "fork"))
        for n in range(children)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    _report(telemetry, exitcodes=[p.exitcode for p in procs], emitted=children * count)


def counters(endpoint: str) -> None:
    """A counter in the parent (before forking) and in spawn, forkserver, fork and
    subprocess children: each must arrive once, under its own process."""
    telemetry = _host(endpoint, metric_interval=3600)
    counter = metrics.get_meter("relay.e2e").create_counter("relay.e2e.things")
    counter.add(5, {TAG: "parent"})
    pids: dict[str, int] = {"parent": os.getpid()}
    for method in ("spawn", "forkserver", "fork"):
        ctx = multiprocessing.get_context(method)
        proc = ctx.Process(target=count_things, args=(method, method != "fork"))
        proc.start()
        proc.join(60)
        assert proc.exitcode == 0, (method, proc.exitcode)
        pids[method] = proc.pid or 0
    code = "import relay_programs as p; p.count_things('subprocess', True)"
    sub = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": os.path.dirname(__file__)},
        timeout=60,
        check=True,
    )
    assert sub.returncode == 0
    _report(telemetry, pids=pids)


def pool(endpoint: str, method: str, items: int) -> None:
    """``with Pool(4)``: its ``__exit__`` terminates (SIGTERMs) the workers."""
    telemetry = _host(endpoint)
    ctx = multiprocessing.get_context(method)
    started = time.monotonic()
    initializer = None if method == "fork" else _pool_init
    with ctx.Pool(4, initializer=initializer) as workers:
        workers.map(_pool_work, range(items))
    exit_seconds = time.monotonic() - started
    _report(telemetry, exit_seconds=exit_seconds, emitted=items)


def tight_loop(endpoint: str, count: int, queue: int) -> None:
    """One process, ``count`` logging calls in a tight loop, no coalescing."""
    os.environ["OTEL_BLRP_MAX_QUEUE_SIZE"] = str(queue)
    os.environ["OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"] = str(min(512, queue))
    telemetry = otelkit.configure(
        service_name="relay-e2e-loop", endpoint=endpoint, coalesce_window=False
    )
    logger = logging.getLogger("relay.e2e")
    for i in range(count):
        logger.warning("loop record %d", i, extra={TAG: "loop", SEQ: i})
    _report(telemetry, emitted=count)


if __name__ == "__main__":
    role, endpoint, *rest = sys.argv[1:]
    if role == "flood":
        flood(endpoint, rest[0], int(rest[1]), int(rest[2]))
    elif role == "counters":
        counters(endpoint)
    elif role == "pool":
        pool(endpoint, rest[0], int(rest[1]))
    elif role == "loop":
        tight_loop(endpoint, int(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown role {role!r}")
