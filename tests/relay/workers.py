"""Child and host programs for the relay's multi-process tests.

Importable (multiprocessing targets) and runnable as a script (``python workers.py ROLE``).
Every program bounds its own waits.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from otelkit.relay import RELAY_ENV, ChildPipeline, RelayAddress, RelayHost

TAG = "relay.test.tag"
SEQ = "relay.test.seq"


def child_pipeline(**options: Any) -> ChildPipeline:
    """The child's pipeline to the relay named in the environment."""
    return ChildPipeline.from_env(
        os.environ[RELAY_ENV],
        resource=Resource({"service.name": "relay-test-child"}),
        **options,
    )


def stdlib_logger(pipeline: ChildPipeline, name: str = "relay.test.child") -> logging.Logger:
    """A stdlib logger feeding ``pipeline`` through the OpenTelemetry logging bridge."""
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    provider = LoggerProvider(resource=Resource({"service.name": "x"}), shutdown_on_exit=False)
    provider.add_log_record_processor(pipeline.log_processor)
    logger = logging.getLogger(name)
    logger.handlers[:] = [LoggingHandler(logger_provider=provider)]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def log_records(tag: str, count: int, max_buffer: int = 50_000, fast: bool = False) -> None:
    """Log ``count`` INFO records tagged ``tag`` with sequence numbers, then just return
    (the exit-time flush must deliver them, also for ``os._exit`` children)."""
    pipeline = child_pipeline(max_buffer=max_buffer, exit_timeout=60.0)
    if fast:
        logger = logging.getLogger("relay.test.fast")
        logger.handlers[:] = [pipeline.logging_handler()]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    else:
        logger = stdlib_logger(pipeline)
    for i in range(count):
        logger.info("record %d", i, extra={TAG: tag, SEQ: i})


def log_same_warning(count: int) -> None:
    """Log one identical warning ``count`` times."""
    logger = stdlib_logger(child_pipeline())
    for _ in range(count):
        logger.warning("disk almost full")


# ---- programs run with subprocess ---------------------------------------------------


class _CountingLogs(LogRecordProcessor):
    def __init__(self) -> None:
        self.count = 0

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.count += 1

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _NoSpans(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        pass


def host_main(env_value: str | None) -> None:
    """Run a relay host; print its env value, then its stats every 0.1 s as JSON lines."""
    logs = _CountingLogs()
    address = RelayAddress.parse(env_value) if env_value else None
    host = RelayHost(span_processor=_NoSpans(), log_processor=logs, address=address)
    host.start()
    print(json.dumps({"env": host.env_value}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + 120
    while not stop.wait(0.1) and time.monotonic() < deadline:
        print(json.dumps({"logs": logs.count, **host.stats}), flush=True)
    host.close(2)


def flood_main(phase_seconds: float, max_buffer: int) -> None:
    """Log flat out: phase A (host running), print ``A``, phase B (test freezes the host),
    flush, print a JSON summary with latencies, memory and counts."""
    pipeline = child_pipeline(max_buffer=max_buffer)
    logger = logging.getLogger("relay.test.flood")
    logger.handlers[:] = [pipeline.logging_handler()]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    clock = time.perf_counter_ns
    emitted = 0

    def run(seconds: float) -> list[int]:
        nonlocal emitted
        latencies = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(200):
                t0 = clock()
                logger.info("flood %d", emitted, extra={SEQ: emitted})
                latencies.append(clock() - t0)
                emitted += 1
        return latencies

    run(0.5)  # warm up: the link is up, buffers and code paths are hot
    normal = run(phase_seconds)
    rss_before = _rss_kb()
    print("A", flush=True)
    stalled = run(phase_seconds * 3)
    rss_after = _rss_kb()
    flushed = pipeline.force_flush(20_000)

    def p99(values: list[int]) -> int:
        return sorted(values)[int(len(values) * 0.99)]

    summary = {
        "emitted": emitted,
        "dropped": pipeline.dropped[0],
        "flushed": flushed,
        "p99_normal_ns": p99(normal),
        "p99_stalled_ns": p99(stalled),
        "max_stalled_ns": max(stalled),
        "rss_growth_kb": rss_after - rss_before,
        "buffered_max": max_buffer,
    }
    pipeline.shutdown()
    print(json.dumps(summary), flush=True)


def _rss_kb() -> int:
    """Resident memory now (Linux), in KiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def steady_main(seconds: float) -> None:
    """Log one record every 10 ms for ``seconds``; print ``ok`` if no exception escaped."""
    pipeline = child_pipeline()
    logger = logging.getLogger("relay.test.steady")
    logger.handlers[:] = [pipeline.logging_handler()]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logging.raiseExceptions = True
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        logger.info("steady %d", i, extra={SEQ: i})
        i += 1
        if i % 50 == 0:
            print(json.dumps({"emitted": i, "connects": pipeline._link.connects}), flush=True)
        time.sleep(0.01)
    pipeline.force_flush(5000)
    print("ok", flush=True)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "host":
        host_main(sys.argv[2] if len(sys.argv) > 2 else None)
    elif role == "flood":
        flood_main(float(sys.argv[2]), int(sys.argv[3]))
    elif role == "steady":
        steady_main(float(sys.argv[2]))
    elif role == "log":
        log_records(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown role {role}")


def configured_child_logs(message: str, count: int) -> None:
    """``otelkit.configure()`` in a child (it finds the relay in the environment), then log."""
    import otelkit

    otelkit.configure(service_name="configured-child")
    logger = logging.getLogger("relay.test.configured")
    logger.setLevel(logging.INFO)
    for _ in range(count):
        logger.warning(message)


def inherited_child_logs(message: str) -> None:
    """A forked child of a configured host: no call of its own, just log."""
    logging.getLogger("relay.test.inherited").warning(message)


class PaymentError(Exception):
    """An application's exception with more than one argument."""


def log_payment_error() -> None:
    """The same ``log.exception()`` call, made by a host and by its children."""
    try:
        raise PaymentError("boom", 42)
    except PaymentError:
        logging.getLogger("relay.test.shop").exception("payment failed")


def configured_child_logs_payment_error(service_name: str) -> None:
    """``otelkit.configure()`` in a child (the host's service), then :func:`log_payment_error`."""
    import otelkit

    otelkit.configure(service_name=service_name)
    log_payment_error()
