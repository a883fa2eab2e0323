"""What a window keeps of its first log record or root span (plain values) and of its first
repeat (a copy of every other field a summary needs)."""

from __future__ import annotations

import gc
import weakref

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelkit.coalesce import CoalescingSpanProcessor
from otelkit.coalesce._summaries import (
    LogSample,
    SpanSample,
    log_origin,
    log_sample,
    span_origin,
    span_sample,
)
from otelkit.testing import FakeClock

RESOURCE = Resource.create({"service.name": "s"})


def log_record() -> ReadWriteLogRecord:
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
        instrumentation_scope=InstrumentationScope("scope"),
        limits=LogRecordLimits(max_attributes=5),
    )


def test_a_log_window_keeps_plain_values_of_its_first_record() -> None:
    origin = log_origin(log_record())
    assert origin == (2, 3, 1, "body")
    gc.collect()
    assert not gc.is_tracked(origin)


def test_a_log_window_keeps_each_other_field_of_its_first_repeat() -> None:
    record = log_record()
    assert log_sample(record) == LogSample(
        resource=RESOURCE,
        scope=record.instrumentation_scope,
        limits=record.limits,
        severity_text="WARN",
        severity_number=SeverityNumber.WARN,
        attributes={"a": 1, "tags": ("x", "y")},
        event_name="event",
    )


def test_a_log_window_copies_the_attributes_of_its_first_repeat() -> None:
    record = log_record()
    kept = log_sample(record)
    record.log_record.attributes["a"] = 2  # type: ignore[index]
    assert kept.attributes == {"a": 1, "tags": ("x", "y")}


def root_span(provider: TracerProvider) -> ReadableSpan:
    span = provider.get_tracer("scope").start_span(
        "GET /items", kind=SpanKind.SERVER, attributes={"http.route": "/items"}
    )
    span.set_status(Status(StatusCode.ERROR, "boom"))
    span.end()
    return span  # type: ignore[return-value]


def test_a_span_window_keeps_plain_values_of_its_first_root() -> None:
    span = root_span(TracerProvider(resource=RESOURCE))
    context = span.context
    assert context is not None
    origin = span_origin(span)
    assert origin == (
        context.trace_id,
        context.span_id,
        int(context.trace_flags),
        span.start_time,
        "GET /items",
    )
    gc.collect()
    assert not gc.is_tracked(origin)


def test_a_span_window_keeps_each_other_field_of_its_first_repeated_root() -> None:
    span = root_span(TracerProvider(resource=RESOURCE))
    assert span_sample(span) == SpanSample(
        kind=SpanKind.SERVER,
        status_code=StatusCode.ERROR,
        status_description="boom",
        resource=RESOURCE,
        scope=span.instrumentation_scope,
        attributes={"http.route": "/items"},
    )


class _Discard:
    def on_start(self, span: object, parent_context: object = None) -> None:
        pass

    def on_end(self, span: object) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def test_an_open_span_window_does_not_keep_its_root_span_alive() -> None:
    processor = CoalescingSpanProcessor(_Discard(), clock=FakeClock())  # type: ignore[arg-type]
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(processor)
    root = weakref.ref(root_span(provider))
    gc.collect()
    assert processor._engine.open_keys == 1 and root() is None
