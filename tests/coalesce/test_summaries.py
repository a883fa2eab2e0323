"""What a log window keeps of its first record: every field a summary needs, copied when
the window opens."""

from __future__ import annotations

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit.coalesce._summaries import FirstLog, first_log

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


def test_a_log_window_keeps_each_field_of_its_first_record() -> None:
    record = log_record()
    assert first_log(record) == FirstLog(
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


def test_a_log_window_copies_the_attributes_when_it_opens() -> None:
    record = log_record()
    kept = first_log(record)
    record.log_record.attributes["a"] = 2  # type: ignore[index]
    assert kept.attributes == {"a": 1, "tags": ("x", "y")}
