"""What a window keeps of its first record: every field comes back, and the garbage
collector stops tracking the snapshot."""

from __future__ import annotations

import gc

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelkit._sdk.coalesce import span_fields
from otelkit.coalesce._snapshots import FirstLog, FirstSpan, LogSnapshots, SpanSnapshots

RESOURCE = Resource.create({"service.name": "s"})


def log_record(scope: str = "scope") -> ReadWriteLogRecord:
    api = LogRecord(
        timestamp=1,
        trace_id=2,
        span_id=3,
        trace_flags=1,
        severity_text="WARN",
        severity_number=SeverityNumber.WARN,
        body="body",
        attributes={"a": 1, "tags": ("x", "y")},
        event_name="event",
    )
    return ReadWriteLogRecord(
        api,
        resource=RESOURCE,
        instrumentation_scope=InstrumentationScope(scope),
        limits=LogRecordLimits(max_attributes=5),
    )


def test_a_log_snapshot_gives_back_each_field_of_the_record() -> None:
    snapshots = LogSnapshots()
    record = log_record()
    kept = snapshots.first(snapshots.capture(record))
    assert kept == FirstLog(
        resource=RESOURCE,
        scope=record.instrumentation_scope,
        limits=record.limits,
        severity_text="WARN",
        severity_number=SeverityNumber.WARN,
        body="body",
        attributes={"a": 1, "tags": ("x", "y")},
        event_name="event",
        trace_id=2,
        span_id=3,
        trace_flags=1,
    )
    assert type(kept.severity_number) is SeverityNumber and type(kept.trace_flags) is int


def test_a_log_snapshot_copies_the_attributes_when_the_window_opens() -> None:
    snapshots = LogSnapshots()
    record = log_record()
    snapshot = snapshots.capture(record)
    record.log_record.attributes["a"] = 2  # type: ignore[index]
    assert snapshots.first(snapshot).attributes == {"a": 1, "tags": ("x", "y")}


def test_a_span_snapshot_gives_back_each_field_of_the_span() -> None:
    snapshots = SpanSnapshots()
    tracer = TracerProvider(resource=RESOURCE, shutdown_on_exit=False).get_tracer("scope")
    span = tracer.start_span("name", kind=SpanKind.SERVER, attributes={"a": 1})
    span.set_status(Status(StatusCode.ERROR, "why"))
    span.end()
    kept = snapshots.first(snapshots.capture(span_fields(span)))
    assert kept == FirstSpan(
        name="name",
        kind=SpanKind.SERVER,
        status_code=StatusCode.ERROR,
        status_description="why",
        attributes={"a": 1},
        resource=RESOURCE,
        scope=span.instrumentation_scope,
        trace_id=span.context.trace_id,
        span_id=span.context.span_id,
        trace_flags=int(span.context.trace_flags),
        start_time=span.start_time,
    )


def test_snapshots_are_untracked_by_the_garbage_collector() -> None:
    # With all keys distinct, tens of thousands of windows are open: a tracked snapshot
    # would be traversed in every collection of its generation until its window closes.
    logs, spans = LogSnapshots(), SpanSnapshots()
    tracer = TracerProvider(resource=RESOURCE, shutdown_on_exit=False).get_tracer("scope")
    span = tracer.start_span("name", attributes={"a": 1, "b": "x"})
    span.end()
    record = log_record()
    record.log_record.attributes = {"a": 1, "b": "x"}
    kept = [logs.capture(record), spans.capture(span_fields(span))]
    assert all(gc.is_tracked(snapshot) for snapshot in kept)  # as every new tuple is
    for _ in range(3):  # a collection per level at most: snapshot, attributes, pairs
        gc.collect()
    assert not any(gc.is_tracked(snapshot) for snapshot in kept)


def test_beyond_the_interned_combinations_a_snapshot_holds_the_objects_themselves() -> None:
    snapshots = LogSnapshots()
    records = [log_record(scope=f"scope {i}") for i in range(LogSnapshots._MAX + 5)]
    kept = [snapshots.capture(record) for record in records]
    assert all(
        snapshots.first(snapshot).scope is record.instrumentation_scope
        for snapshot, record in zip(kept, records, strict=True)
    )
    assert type(kept[0][0]) is int and type(kept[-1][0]) is tuple
