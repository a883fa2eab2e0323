"""What a window keeps of its first log record or root span until the window ends.

A window opens for every distinct key, so this is on the hot path: a plain function reads
the fields a summary needs, by reference (the interpreter's specialised attribute loads
cost a third of what ``operator.attrgetter``'s generic lookups cost). A window is open
for seconds, so what it keeps is chosen for the garbage collector too: every object kept
alive that it tracks is traversed again in each collection until the window closes. So a
snapshot keeps the plain dict inside ``BoundedAttributes`` (a dict of plain values is not
tracked; its wrapper and the wrapper's lock are) and trace context as ints (a
``SpanContext`` and its ``TraceFlags`` are tracked). A span's attributes are frozen when
it ends; a log record's are the record's own, so a processor that changes a record after
this one also changes what its summary carries.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

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
    """The record's attribute mapping, the plain dict inside a ``BoundedAttributes`` (or
    ``None``)."""
    event_name: str | None
    trace_id: int | None
    span_id: int | None
    trace_flags: int
    """The record's trace flags as a plain int."""


def capture_log(record: Any) -> Snapshot:
    """The fields of :class:`FirstLog` of a ``ReadWriteLogRecord``, as a plain tuple."""
    log = record.log_record
    attributes = log.attributes
    if type(attributes) is BoundedAttributes:
        attributes = attributes._dict  # as plain_attributes does, without a call
    return (
        record.resource,
        record.instrumentation_scope,
        record.limits,
        log.severity_text,
        log.severity_number,
        log.body,
        attributes,
        log.event_name,
        log.trace_id,
        log.span_id,
        (log.trace_flags or 0) & 0xFF,  # a plain int
    )


class FirstSpan(NamedTuple):
    """What a window keeps of its first root span."""

    name: str
    kind: SpanKind
    status_code: StatusCode
    status_description: str | None
    attributes: Any
    """The span's attribute mapping (frozen when the span ended), the plain dict inside a
    ``BoundedAttributes``."""
    resource: Resource
    scope: InstrumentationScope | None
    trace_id: int
    span_id: int
    trace_flags: int
    """The span's trace flags as a plain int."""
    start_time: int | None


def capture_span(span: Any) -> Snapshot:
    """The fields of :class:`FirstSpan` of a ``ReadableSpan``, as a plain tuple."""
    # The private fields: the public properties copy (a tuple, a mapping proxy) or cost a
    # Python-level call per access.
    status = span._status
    attributes = span._attributes
    if type(attributes) is BoundedAttributes:
        attributes = attributes._dict
    context = span._context  # a tuple: trace_id, span_id, is_remote, trace_flags, ...
    return (
        span._name,
        span._kind,
        status._status_code,
        status._description,
        attributes,
        span._resource,
        span._instrumentation_scope,
        context[0],
        context[1],
        context[3] & 0xFF,
        span._start_time,
    )
