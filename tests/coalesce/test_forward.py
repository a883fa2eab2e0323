"""Forwarding into the SDK's batch log processor exports what its own hook would."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import set_span_in_context

from otelkit.coalesce import CoalescingLogRecordProcessor
from otelkit.testing import FakeClock


class TaggedLogRecord(LogRecord):
    """A subclass of the API record: copied with copy.copy, as the SDK does."""


def make_record(
    cls: type[LogRecord], *, resource: Resource | None, body: str
) -> ReadWriteLogRecord:
    span = TracerProvider(shutdown_on_exit=False).get_tracer("tests").start_span("current")
    api = cls(
        timestamp=5,
        observed_timestamp=6,
        context=set_span_in_context(span),
        severity_number=SeverityNumber.ERROR,
        severity_text="ERROR",
        body=body,
        attributes={"code.line.number": 7},
        event_name="tests.event",
    )
    record = ReadWriteLogRecord(
        api, resource=resource, instrumentation_scope=InstrumentationScope("t")
    )
    # ReadWriteLogRecord defaults the resource; a None one must become Resource.create({}).
    record.resource = resource
    return record


def exported_through(processor: Any, exporter: InMemoryLogRecordExporter, record: Any) -> Any:
    processor.on_emit(record)
    processor.force_flush()
    (exported,) = exporter.get_finished_logs()
    return exported


@pytest.mark.parametrize("cls", [LogRecord, TaggedLogRecord])
@pytest.mark.parametrize("resource", [Resource.create({"service.name": "s"}), None])
def test_a_batch_log_processor_exports_what_its_own_on_emit_would(
    fake_clock: FakeClock, cls: type[LogRecord], resource: Resource | None
) -> None:
    direct_exporter, ours_exporter = InMemoryLogRecordExporter(), InMemoryLogRecordExporter()
    direct = BatchLogRecordProcessor(direct_exporter)
    ours = CoalescingLogRecordProcessor(BatchLogRecordProcessor(ours_exporter), clock=fake_clock)
    original = make_record(cls, resource=resource, body="same record")
    context_before = original.log_record.context

    expected = exported_through(direct, direct_exporter, original)
    got = exported_through(ours, ours_exporter, original)

    assert type(got) is ReadableLogRecord
    assert type(got.log_record) is cls
    # Whatever the SDK's own on_emit queues on this release: newer ones a shallow copy of the
    # API record with an empty context (the queue does not keep the caller's context
    # alive), 1.40 the caller's record itself.
    copies = expected.log_record is not original.log_record
    assert (got.log_record is not original.log_record) is copies
    assert {**vars(got.log_record), "context": None} == {
        **vars(expected.log_record),
        "context": None,
    }
    assert got.log_record.context == (Context() if copies else context_before)
    assert original.log_record.context is context_before  # the caller's record is untouched
    assert (got.resource, got.instrumentation_scope, got.limits) == (
        expected.resource,
        expected.instrumentation_scope,
        expected.limits,
    )
    assert got.to_json() == expected.to_json()
    direct.shutdown()
    ours.shutdown()
