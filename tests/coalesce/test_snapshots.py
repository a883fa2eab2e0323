"""What a window keeps of its first record: each FirstLog/FirstSpan field is that record's."""

from __future__ import annotations

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelkit.coalesce._snapshots import FirstLog, FirstSpan, capture_log, capture_span


def test_capture_log_keeps_each_named_field_of_the_record() -> None:
    api = LogRecord(
        timestamp=1,
        trace_id=2,
        span_id=3,
        trace_flags=1,
        severity_text="WARN",
        severity_number=SeverityNumber.WARN,
        body="body",
        attributes={"a": 1},
        event_name="event",
    )
    limits = LogRecordLimits(max_attributes=5)
    record = ReadWriteLogRecord(
        api,
        resource=Resource.create({"service.name": "s"}),
        instrumentation_scope=InstrumentationScope("scope"),
        limits=limits,
    )
    kept = FirstLog._make(capture_log(record))
    assert kept == FirstLog(
        resource=record.resource,
        scope=record.instrumentation_scope,
        limits=limits,
        severity_text="WARN",
        severity_number=SeverityNumber.WARN,
        body="body",
        attributes=api.attributes,
        event_name="event",
        trace_id=2,
        span_id=3,
        trace_flags=1,
    )
    assert type(kept.attributes) is dict and type(kept.trace_flags) is int


def test_capture_span_keeps_each_named_field_of_the_span() -> None:
    resource = Resource.create({"service.name": "s"})
    tracer = TracerProvider(resource=resource, shutdown_on_exit=False).get_tracer("scope")
    span = tracer.start_span("name", kind=SpanKind.SERVER, attributes={"a": 1})
    span.set_status(Status(StatusCode.ERROR, "why"))
    span.end()
    kept = FirstSpan._make(capture_span(span))
    assert kept == FirstSpan(
        name="name",
        kind=SpanKind.SERVER,
        status_code=StatusCode.ERROR,
        status_description="why",
        attributes=span.attributes,
        resource=resource,
        scope=span.instrumentation_scope,
        trace_id=span.context.trace_id,
        span_id=span.context.span_id,
        trace_flags=int(span.context.trace_flags),
        start_time=span.start_time,
    )
    # Only what the garbage collector need not track, besides shared objects.
    assert type(kept.attributes) is dict and type(kept.trace_flags) is int
