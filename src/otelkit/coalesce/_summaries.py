"""What a closed window becomes downstream: a summary log record or a summary span.

A summary looks like the window's first record or root span (from its snapshot, see
``_snapshots``) plus the ``otelkit.coalesce.*`` attributes of :func:`summary_attributes`.
"""

from __future__ import annotations

from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags

from otelkit._sdk.logs import attribute_limits
from otelkit.coalesce._common import summary_attributes
from otelkit.coalesce._snapshots import FirstLog, FirstSpan
from otelkit.coalesce._window import Summary

__all__ = ["LINK_ATTRIBUTES", "summary_log_record", "summary_span"]

LINK_ATTRIBUTES = {"otelkit.coalesce.link": "first"}
"""The attributes of a summary span's link to the first exported root."""


def summary_log_record(first: FirstLog, summary: Summary[Any], now_ns: int) -> ReadWriteLogRecord:
    """The summary record of a log window whose first record was ``first``, stamped
    ``now_ns``; the summary's attributes survive the first record's attribute limit."""
    limits = first.limits if first.limits is not None else LogRecordLimits()
    ours = summary_attributes(summary)
    attributes = first.attributes or {}  # a fresh dict
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
    record.trace_flags = TraceFlags(first.trace_flags or 0)
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
    attributes = first.attributes or {}  # a fresh dict
    attributes.update(summary_attributes(summary))
    first_context = SpanContext(
        first.trace_id,
        first.span_id,
        is_remote=False,
        trace_flags=TraceFlags(first.trace_flags),
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
