"""Two steps of the coalescing processors, each against what it replaced (timeit, minimum
of repeats; the calling thread only, everything hot in cache, so the figures are lower
bounds of what the steps cost inside a pipeline):

- a window's snapshot of its first log record and root span
  (``LogSnapshots.capture``/``SpanSnapshots.capture`` of ``span_fields(span)``) vs reading the same fields by
  reference with one ``operator.attrgetter`` call, as windows did before;
- forwarding a log record to exactly a ``BatchLogRecordProcessor``
  (``queue_readable_copy``) vs that processor's own ``on_emit``, both into a queue that
  drops what it gets.

    .venv/bin/python benchmarks/coalesce_steps.py [--number N]
"""

from __future__ import annotations

import argparse
import logging
import timeit
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk.trace import TracerProvider

from otelkit._sdk.coalesce import span_fields
from otelkit.coalesce._forward import queue_readable_copy
from otelkit.coalesce._snapshots import LogSnapshots, SpanSnapshots

# The fields windows read by reference before they kept snapshots of plain values.
_BY_REFERENCE_LOG = attrgetter(
    "resource",
    "instrumentation_scope",
    "limits",
    "log_record.severity_text",
    "log_record.severity_number",
    "log_record.body",
    "log_record.attributes",
    "log_record.event_name",
    "log_record.trace_id",
    "log_record.span_id",
    "log_record.trace_flags",
)
_BY_REFERENCE_SPAN = attrgetter(
    "_name",
    "_kind",
    "_status._status_code",
    "_status._description",
    "_attributes",
    "_resource",
    "_instrumentation_scope",
    "_context",
    "_start_time",
)


class _Keep(LogRecordProcessor):
    def __init__(self) -> None:
        self.records: list[ReadWriteLogRecord] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.records.append(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def samples() -> tuple[ReadWriteLogRecord, Any]:
    """A log record from a stdlib logging call inside a span, and that (root) span."""
    keep = _Keep()
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(keep)
    logger = logging.getLogger("bench.steps")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=logger_provider))
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("bench")
    with tracer.start_as_current_span("op 1", attributes={"http.route": "/a"}) as span:
        logger.warning("event %d happened", 1)
    return keep.records[-1], span


def per_call_ns(function: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(function, number=number, repeat=7)) / number * 1e9


def line(name: str, ours: float, baseline: float) -> str:
    return f"{name}: ratio={ours / baseline:.3f} (ours={ours:.0f} ns, baseline={baseline:.0f} ns)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=200_000, help="calls per repeat")
    args = parser.parse_args()
    if args.number < 1:
        parser.error("--number must be >= 1")
    record, span = samples()
    logs, spans = LogSnapshots(), SpanSnapshots()
    print(
        line(
            "snapshot_log",
            per_call_ns(lambda: logs.capture(record), args.number),
            per_call_ns(lambda: _BY_REFERENCE_LOG(record), args.number),
        )
    )
    print(
        line(
            "snapshot_span",
            per_call_ns(lambda: spans.capture(span_fields(span)), args.number),
            per_call_ns(lambda: _BY_REFERENCE_SPAN(span), args.number),
        )
    )
    batch = BatchLogRecordProcessor(InMemoryLogRecordExporter())
    try:
        # Both sides hand their copy to a queue that drops it (no worker wake-ups).
        batch._batch_processor.emit = lambda item: None  # type: ignore[method-assign]
        print(
            line(
                "coalesce_forward_log",
                per_call_ns(lambda: queue_readable_copy(lambda item: None, record), args.number),
                per_call_ns(lambda: batch.on_emit(record), args.number),
            )
        )
    finally:
        batch.shutdown()


if __name__ == "__main__":
    main()
