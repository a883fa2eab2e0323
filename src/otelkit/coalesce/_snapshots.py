"""What a window keeps of its first record or root span until the window ends.

Flat tuples of references and atomic values: cheap to build (no Python-level ``__new__``),
and they keep neither the SDK's record objects nor their locks alive, so open windows cost
little memory and little garbage-collection work.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LogRecordLimits, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status

from otelkit.coalesce._keys import plain_attributes

__all__ = ["FirstLog", "FirstSpan", "capture_log", "capture_span"]

_new_tuple: Any = tuple.__new__


class FirstLog(NamedTuple):
    """What a window keeps of its first record: flat, so it costs the GC almost nothing."""

    severity_text: str | None
    severity_number: SeverityNumber | None
    body: Any
    attributes: tuple[tuple[str, Any], ...]
    event_name: str | None
    trace_id: int
    span_id: int
    trace_flags: Any
    resource: Any
    scope: InstrumentationScope | None
    limits: LogRecordLimits | None


def capture_log(record: ReadWriteLogRecord | ReadableLogRecord) -> FirstLog:
    """The :class:`FirstLog` of ``record``."""
    lr = record.log_record
    attributes = plain_attributes(lr.attributes)
    first: FirstLog = _new_tuple(  # FirstLog(...) without the Python-level __new__
        FirstLog,
        (
            lr.severity_text,
            lr.severity_number,
            lr.body,
            tuple(attributes.items()) if attributes else (),
            lr.event_name,
            lr.trace_id,
            lr.span_id,
            lr.trace_flags,
            record.resource,
            record.instrumentation_scope,
            record.limits,
        ),
    )
    return first


class FirstSpan(NamedTuple):
    """What a window keeps of its first root: flat, so it costs the GC almost nothing."""

    name: str
    kind: SpanKind
    status: Status
    attributes: tuple[tuple[str, Any], ...]
    resource: Resource
    scope: InstrumentationScope | None
    context: SpanContext | None
    start_time: int | None


def capture_span(span: ReadableSpan) -> FirstSpan:
    """The :class:`FirstSpan` of ``span``."""
    attributes = plain_attributes(span._attributes)
    first: FirstSpan = _new_tuple(  # FirstSpan(...) without the Python-level __new__
        FirstSpan,
        (
            span._name,
            span._kind,
            span._status,
            tuple(attributes.items()) if attributes else (),
            span._resource,
            span._instrumentation_scope,
            span._context,
            span._start_time,
        ),
    )
    return first
