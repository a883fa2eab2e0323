"""Coalescing shortcuts: records queued into exactly the SDK's ``BatchLogRecordProcessor``
or ``BatchSpanProcessor`` without their hooks, and the readable log copy built directly.

Each shortcut has the public-API twin it stands for; the self-check compares the two on
objects built here, and the module-level names are bound to the shortcut only when the
check passes (``otelkit._sdk._check.checked``). Callers use the names and never know which
one they got. The two queue shortcuts need a real batch processor (a worker thread) for
their check, so they check themselves on first use rather than at import.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit._sdk._check import checked

__all__ = [
    "READABLE_COPY_OK",
    "batch_span_queue",
    "log_forward_ok",
    "log_forwarder",
    "queue_readable_copy",
    "readable_copy",
]

# -- the readable copy of a log record -----------------------------------------------------
_new = object.__new__


def _readable_copy_public(record: ReadWriteLogRecord) -> ReadableLogRecord:
    # What BatchLogRecordProcessor.on_emit builds: a shallow copy of the API record with an
    # empty context (the queue must not keep the caller's context alive).
    api = copy.copy(record.log_record)
    api.context = Context()
    resource = record.resource
    return ReadableLogRecord(
        log_record=api,
        resource=resource if resource is not None else Resource.create({}),
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )


def _readable_copy_private(record: ReadWriteLogRecord) -> ReadableLogRecord:
    # The same, without copy.copy's Python-level dispatch and the frozen dataclass's
    # __init__ (which sets each field through object.__setattr__).
    api: Any = record.log_record
    if type(api) is LogRecord:
        copied = _new(LogRecord)
        copied.__dict__.update(api.__dict__)
    else:
        copied = copy.copy(api)
    copied.context = Context()
    resource = record.resource
    readable = _new(ReadableLogRecord)
    readable.__dict__.update(
        log_record=copied,
        resource=resource if resource is not None else Resource.create({}),
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )
    return readable


def _check_record() -> ReadWriteLogRecord:
    from opentelemetry._logs import SeverityNumber

    api = LogRecord(
        timestamp=5,
        observed_timestamp=6,
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body="check",
        attributes={"code.line.number": 7},
        event_name="otelkit.check",
    )
    return ReadWriteLogRecord(
        api,
        resource=Resource.create({"service.name": "otelkit-check"}),
        instrumentation_scope=InstrumentationScope("otelkit.sdk-check"),
    )


def _check_readable_copy() -> bool:
    """The shortcut's copy equals the public construction's, field by field."""
    record = _check_record()
    ours, public = _readable_copy_private(record), _readable_copy_public(record)
    return (
        type(ours) is ReadableLogRecord
        and type(ours.log_record) is LogRecord
        and ours.log_record is not record.log_record
        and vars(ours.log_record) == vars(public.log_record)
        and vars(ours).keys() == vars(public).keys()
        and (ours.resource, ours.instrumentation_scope, ours.limits)
        == (public.resource, public.instrumentation_scope, public.limits)
        and ours.to_json() == public.to_json()
    )


READABLE_COPY_OK = checked("readable_copy", _check_readable_copy)
"""Whether :data:`readable_copy` builds the copy without the dataclass machinery."""

readable_copy: Callable[[ReadWriteLogRecord], ReadableLogRecord] = (
    _readable_copy_private if READABLE_COPY_OK else _readable_copy_public
)
"""What ``BatchLogRecordProcessor.on_emit`` queues for a record."""


def queue_readable_copy(
    emit: Callable[[ReadableLogRecord], None], record: ReadWriteLogRecord
) -> None:
    """``emit(readable_copy(record))``: one frame, for ``functools.partial``."""
    emit(readable_copy(record))


# -- forwarding into exactly a BatchLogRecordProcessor -------------------------------------
def _batch_queue(processor: BatchLogRecordProcessor) -> Callable[[ReadableLogRecord], None]:
    emit: Callable[[ReadableLogRecord], None] = processor._batch_processor.emit
    return emit


@functools.cache
def _log_forward_ok() -> bool:
    # Checked on first use, not at import: it needs a real BatchLogRecordProcessor, whose
    # worker thread an import should not start.
    def check() -> bool:
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

        exported = []
        for shortcut in (False, True):
            exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
            processor = BatchLogRecordProcessor(exporter)
            try:
                if shortcut:
                    queue_readable_copy(_batch_queue(processor), _check_record())
                else:
                    processor.on_emit(_check_record())
                processor.force_flush(5000)
                exported.append([r.to_json() for r in exporter.get_finished_logs()])
            finally:
                processor.shutdown()  # type: ignore[no-untyped-call]
        return len(exported[0]) == 1 and exported[0] == exported[1]

    return checked("log_forwarder", check)


def log_forward_ok() -> bool:
    """Whether :func:`log_forwarder` feeds a ``BatchLogRecordProcessor``'s queue directly
    (checked once, on the first call)."""
    return _log_forward_ok()


def log_forwarder(downstream: LogRecordProcessor) -> Callable[[ReadWriteLogRecord], None]:
    """A callable forwarding one record to ``downstream`` as its ``on_emit`` does: for
    exactly a ``BatchLogRecordProcessor`` (a subclass may override its hook), the copy its
    hook would queue, queued directly; else ``downstream.on_emit`` itself."""
    if type(downstream) is not BatchLogRecordProcessor or not _log_forward_ok():
        return downstream.on_emit
    return functools.partial(queue_readable_copy, _batch_queue(downstream))


# -- forwarding into exactly a BatchSpanProcessor ------------------------------------------
@functools.cache
def _span_queue_ok() -> bool:
    # As _log_forward_ok: checked on first use, with a real BatchSpanProcessor.
    def check() -> bool:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        processor = BatchSpanProcessor(exporter)
        try:
            span: Any = TracerProvider(shutdown_on_exit=False).get_tracer("otelkit").start_span("c")
            span.end()
            processor._batch_processor.emit(span)
            processor.force_flush(5000)
            return list(exporter.get_finished_spans()) == [span]
        finally:
            processor.shutdown()  # type: ignore[no-untyped-call]

    return checked("batch_span_queue", check)


def batch_span_queue(downstream: SpanProcessor) -> Callable[[ReadableSpan], None] | None:
    """The queue of ``downstream`` when it is exactly a ``BatchSpanProcessor`` and the
    shortcut passed its check (the caller makes the hook's sampled check first), else
    ``None``: the caller then calls ``downstream.on_end``."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if type(downstream) is not BatchSpanProcessor or not _span_queue_ok():
        return None
    emit: Callable[[ReadableSpan], None] = downstream._batch_processor.emit
    return emit
