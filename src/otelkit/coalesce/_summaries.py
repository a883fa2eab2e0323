"""What a window keeps of its first log record or root span, and the summary it becomes.

A window keeps a :class:`FirstLog` or a :class:`FirstSpan`: an immutable copy of the fields
its summary needs, taken when the window opens. The copy, not the record: a later
processor's changes to a log record do not reach the summary, and a window (open for every
distinct key, most of which never repeat) holds two small objects instead of a whole record
or span for the garbage collector to walk. A closed window with repeats becomes a summary
that looks like that first record or root span plus the ``otelkit.coalesce.*`` attributes of
:func:`summary_attributes`.

They are named tuples rather than frozen dataclasses: as immutable, and built about four
times faster (a frozen dataclass sets each field through ``object.__setattr__``: 2.7 µs
against 0.6 µs for eleven fields on CPython 3.11), and a window opens for every new key, on
the application thread.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LogRecordLimits, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otelkit._sdk.logs import attribute_limits
from otelkit.coalesce._common import summary_attributes
from otelkit.coalesce._window import Summary

__all__ = [
    "LINK_ATTRIBUTES",
    "FirstLog",
    "FirstSpan",
    "first_log",
    "first_span",
    "summary_log_record",
    "summary_span",
]

LINK_ATTRIBUTES = {"otelkit.coalesce.link": "first"}
"""The attributes of a summary span's link to the first exported root."""


class FirstLog(NamedTuple):
    """What a log window keeps of its first record."""

    resource: Resource | None
    scope: InstrumentationScope | None
    limits: LogRecordLimits | None
    severity_text: str | None
    severity_number: SeverityNumber | None
    body: Any
    attributes: dict[str, Any] | None
    """A copy of the record's attributes, taken when its window opened."""
    event_name: str | None
    trace_id: int | None
    span_id: int | None
    trace_flags: int


def first_log(record: ReadWriteLogRecord | ReadableLogRecord) -> FirstLog:
    """What a window keeps of ``record`` (the engine's ``capture``)."""
    log = record.log_record
    attributes: Any = log.attributes
    return FirstLog(
        record.resource,
        record.instrumentation_scope,
        record.limits,
        log.severity_text,
        log.severity_number,
        log.body,
        # copy(): a BoundedAttributes hands out its dict's copy in one call.
        attributes.copy() if attributes else None,
        log.event_name,
        log.trace_id,
        log.span_id,
        int(log.trace_flags or 0),
    )


class FirstSpan(NamedTuple):
    """What a span window keeps of its first root span."""

    name: str
    kind: SpanKind
    trace_id: int
    span_id: int
    trace_flags: int
    status_code: StatusCode
    status_description: str | None
    start_time: int | None
    resource: Resource
    scope: InstrumentationScope | None
    attributes: dict[str, Any] | None
    """A copy of the root's attributes (``None`` when it has none)."""


def first_span(span: ReadableSpan) -> FirstSpan:
    """What a window keeps of the root ``span`` (the engine's ``capture``)."""
    context = span.context
    status = span.status
    attributes = span.attributes
    return FirstSpan(
        span.name,
        span.kind,
        context.trace_id if context is not None else 0,
        context.span_id if context is not None else 0,
        int(context.trace_flags) if context is not None else 0,
        status.status_code,
        status.description,
        span.start_time,
        span.resource,
        span.instrumentation_scope,
        dict(attributes) if attributes else None,
    )


def summary_log_record(first: FirstLog, summary: Summary[Any], now_ns: int) -> ReadWriteLogRecord:
    """The summary record of a log window whose first record was ``first``, stamped
    ``now_ns``; the summary's attributes survive the first record's attribute limit."""
    limits = first.limits if first.limits is not None else LogRecordLimits()
    ours = summary_attributes(summary)
    attributes = dict(first.attributes or {})
    for name in ours:
        attributes.pop(name, None)
    room = attribute_limits(limits)[0]
    if room is not None and len(attributes) > room - len(ours):
        # Ours must survive the limit: drop the first record's oldest attributes.
        keep = max(0, room - len(ours))
        attributes = dict(list(attributes.items())[len(attributes) - keep :])
    attributes.update(ours)
    record = LogRecord(
        timestamp=now_ns,
        observed_timestamp=now_ns,
        severity_text=first.severity_text,
        severity_number=first.severity_number,
        body=first.body,
        attributes=attributes,
        event_name=first.event_name,
    )
    # The first record's trace context, whatever the timer thread's context is.
    record.trace_id = first.trace_id or 0
    record.span_id = first.span_id or 0
    record.trace_flags = TraceFlags(first.trace_flags)
    return ReadWriteLogRecord(
        log_record=record,
        resource=first.resource,
        instrumentation_scope=first.scope,
        limits=limits,
    )


def summary_span(first: FirstSpan, summary: Summary[Any], ids: IdGenerator) -> ReadableSpan:
    """The summary span of a span window whose first root was ``first``: a new trace with
    the root's name and attributes, linked to the first root, ending at the last repeat."""
    context = SpanContext(
        trace_id=ids.generate_trace_id(),
        span_id=ids.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    attributes = dict(first.attributes or {})
    attributes.update(summary_attributes(summary))
    first_context = SpanContext(
        first.trace_id, first.span_id, is_remote=False, trace_flags=TraceFlags(first.trace_flags)
    )
    links = (Link(first_context, LINK_ATTRIBUTES),) if first_context.is_valid else ()
    error = first.status_code is StatusCode.ERROR
    return ReadableSpan(
        name=first.name,
        context=context,
        parent=None,
        resource=first.resource,
        attributes=attributes,
        links=links,
        kind=first.kind,
        status=Status(first.status_code, first.status_description if error else None),
        start_time=first.start_time,
        end_time=summary.last_time_ns,
        instrumentation_scope=first.scope,
    )
