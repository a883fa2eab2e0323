"""What a window keeps of its first log record or root span until the window ends.

A window opens for every distinct key, so this is on the hot path: a plain function reads
the fields a summary needs, by reference (the interpreter's specialised attribute loads
cost a third of what ``operator.attrgetter``'s generic lookups cost). The SDK's objects
stay as they are: a span's attributes are frozen when it ends; a log record's are the
record's own, so a processor that changes a record after this one also changes what its
summary carries.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

__all__ = ["FirstLog", "FirstSpan", "Snapshot", "capture_log", "capture_span"]

Snapshot = tuple[Any, ...]
"""A kept first record as a plain tuple: ``FirstLog._make(snapshot)`` /
``FirstSpan._make(snapshot)`` name its fields."""


class FirstLog(NamedTuple):
    """What a window keeps of its first log record."""

    resource: Resource | None
    scope: InstrumentationScope | None
    limits: Any
    severity_text: str | None
    severity_number: Any
    body: Any
    attributes: Any
    """The record's attribute mapping (or ``None``)."""
    event_name: str | None
    trace_id: int | None
    span_id: int | None
    trace_flags: int | None


def capture_log(record: Any) -> Snapshot:
    """The fields of :class:`FirstLog` of a ``ReadWriteLogRecord``, as a plain tuple."""
    log = record.log_record
    return (
        record.resource,
        record.instrumentation_scope,
        record.limits,
        log.severity_text,
        log.severity_number,
        log.body,
        log.attributes,
        log.event_name,
        log.trace_id,
        log.span_id,
        log.trace_flags,
    )


class FirstSpan(NamedTuple):
    """What a window keeps of its first root span."""

    name: str
    kind: SpanKind
    status_code: StatusCode
    status_description: str | None
    attributes: Any
    """The span's attribute mapping (frozen when the span ended)."""
    resource: Resource
    scope: InstrumentationScope | None
    context: SpanContext | None
    start_time: int | None


def capture_span(span: Any) -> Snapshot:
    """The fields of :class:`FirstSpan` of a ``ReadableSpan``, as a plain tuple."""
    # The private fields: the public properties copy (a tuple, a mapping proxy) or cost a
    # Python-level call per access.
    status = span._status
    return (
        span._name,
        span._kind,
        status._status_code,
        status._description,
        span._attributes,
        span._resource,
        span._instrumentation_scope,
        span._context,
        span._start_time,
    )
