"""What a window keeps of its first log record or root span until the window ends.

A window opens for every distinct key, so this is on the hot path: one C call
(``operator.attrgetter``) reads the fields a summary needs, by reference, without a Python
frame. The SDK's objects stay as they are: a span's attributes are frozen when it ends; a
log record's are the record's own, so a processor that changes a record after this one also
changes what its summary carries.
"""

from __future__ import annotations

from operator import attrgetter
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


_LOG_PATHS = {
    "resource": "resource",
    "scope": "instrumentation_scope",
    "limits": "limits",
    "severity_text": "log_record.severity_text",
    "severity_number": "log_record.severity_number",
    "body": "log_record.body",
    "attributes": "log_record.attributes",
    "event_name": "log_record.event_name",
    "trace_id": "log_record.trace_id",
    "span_id": "log_record.span_id",
    "trace_flags": "log_record.trace_flags",
}
capture_log: Any = attrgetter(*(_LOG_PATHS[name] for name in FirstLog._fields))
"""``capture_log(record)``: the fields of :class:`FirstLog` of a ``ReadWriteLogRecord``."""


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


_SPAN_PATHS = {
    "name": "_name",
    "kind": "_kind",
    "status_code": "_status._status_code",
    "status_description": "_status._description",
    "attributes": "_attributes",
    "resource": "_resource",
    "scope": "_instrumentation_scope",
    "context": "_context",
    "start_time": "_start_time",
}
# The private fields: the public properties copy (a tuple, a mapping proxy) or cost a
# Python-level call per access.
capture_span: Any = attrgetter(*(_SPAN_PATHS[name] for name in FirstSpan._fields))
"""``capture_span(span)``: the fields of :class:`FirstSpan` of a ``ReadableSpan``."""
