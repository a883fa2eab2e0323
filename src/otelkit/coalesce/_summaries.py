"""What a window keeps of its first and of its first repeated log record or root span, and
the summary it becomes.

A window keeps of its first occurrence only what its summary cannot take from a repeat, as
plain values (:func:`log_origin`, :func:`span_origin`): the trace context the summary points
back to (the log record's trace and span ids; the root's, for the summary span's link), the
root's start, and the log body or span name a reader recognises it by. Most keys are seen
once, and such a window then holds nothing the garbage collector walks (a str body; any
other body is kept by reference). On the first repeat the window copies the rest of what
its summary shows from that repeat (:class:`LogSample`, :class:`SpanSample`): the fields the
key compares are the first's (by default logger, severity, body and exception type; scope,
kind, name and status), the others (attributes, resource, ...) the first repeat's. A copy,
not the record: a later processor's changes to a log record do not reach the summary.

The samples are named tuples rather than frozen dataclasses: as immutable, and built about
four times faster (a frozen dataclass sets each field through ``object.__setattr__``).
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
    "LogOrigin",
    "LogSample",
    "SpanOrigin",
    "SpanSample",
    "log_origin",
    "log_sample",
    "span_origin",
    "span_sample",
    "summary_log_record",
    "summary_span",
]

LINK_ATTRIBUTES = {"otelkit.coalesce.link": "first"}
"""The attributes of a summary span's link to the first exported root."""


LogOrigin = tuple[int, int, int, Any]
"""What a log window keeps of its first record: trace id, span id, trace flags, body."""


def log_origin(record: ReadWriteLogRecord | ReadableLogRecord) -> LogOrigin:
    """What a window keeps of its first ``record`` (the engine's ``remember``)."""
    log = record.log_record
    return (log.trace_id or 0, log.span_id or 0, int(log.trace_flags or 0), log.body)


class LogSample(NamedTuple):
    """What a log window keeps of its first repeat."""

    resource: Resource | None
    scope: InstrumentationScope | None
    limits: LogRecordLimits | None
    severity_text: str | None
    severity_number: SeverityNumber | None
    attributes: dict[str, Any] | None
    """A copy of the record's attributes, taken on the first repeat."""
    event_name: str | None


def log_sample(record: ReadWriteLogRecord | ReadableLogRecord) -> LogSample:
    """What a window keeps of its first repeated ``record`` (the engine's ``capture``)."""
    log = record.log_record
    attributes: Any = log.attributes
    return LogSample(
        record.resource,
        record.instrumentation_scope,
        record.limits,
        log.severity_text,
        log.severity_number,
        # copy(): a BoundedAttributes hands out its dict's copy in one call.
        attributes.copy() if attributes else None,
        log.event_name,
    )


SpanOrigin = tuple[int, int, int, int | None, str]
"""What a span window keeps of its first root: trace id, span id, trace flags, start time,
name."""


def span_origin(span: ReadableSpan) -> SpanOrigin:
    """What a window keeps of its first root ``span`` (the engine's ``remember``)."""
    context = span.context
    if context is None:
        return (0, 0, 0, span.start_time, span.name)
    flags = int(context.trace_flags)
    return (context.trace_id, context.span_id, flags, span.start_time, span.name)


class SpanSample(NamedTuple):
    """What a span window keeps of its first repeated root."""

    kind: SpanKind
    status_code: StatusCode
    status_description: str | None
    resource: Resource
    scope: InstrumentationScope | None
    attributes: dict[str, Any] | None
    """A copy of the root's attributes (``None`` when it has none)."""


def span_sample(span: ReadableSpan) -> SpanSample:
    """What a window keeps of its first repeated root ``span`` (the engine's ``capture``)."""
    status = span.status
    attributes = span.attributes
    return SpanSample(
        span.kind,
        status.status_code,
        status.description,
        span.resource,
        span.instrumentation_scope,
        dict(attributes) if attributes else None,
    )


def summary_log_record(summary: Summary[LogSample], now_ns: int) -> ReadWriteLogRecord:
    """The summary record of a closed log window, stamped ``now_ns``: like its sample, with
    its first record's trace context; the summary's attributes survive the sample's
    attribute limit."""
    sample = summary.sample
    trace_id, span_id, trace_flags, body = summary.first
    limits = sample.limits if sample.limits is not None else LogRecordLimits()
    ours = summary_attributes(summary)
    attributes = dict(sample.attributes or {})
    for name in ours:
        attributes.pop(name, None)
    room = attribute_limits(limits)[0]
    if room is not None and len(attributes) > room - len(ours):
        # Ours must survive the limit: drop the sample's oldest attributes.
        keep = max(0, room - len(ours))
        attributes = dict(list(attributes.items())[len(attributes) - keep :])
    attributes.update(ours)
    record = LogRecord(
        timestamp=now_ns,
        observed_timestamp=now_ns,
        severity_text=sample.severity_text,
        severity_number=sample.severity_number,
        body=body,
        attributes=attributes,
        event_name=sample.event_name,
    )
    # The first record's trace context, whatever the timer thread's context is.
    record.trace_id = trace_id
    record.span_id = span_id
    record.trace_flags = TraceFlags(trace_flags)
    return ReadWriteLogRecord(
        log_record=record,
        resource=sample.resource,
        instrumentation_scope=sample.scope,
        limits=limits,
    )


def summary_span(summary: Summary[SpanSample], ids: IdGenerator) -> ReadableSpan:
    """The summary span of a closed span window: a new trace like its sample (name,
    attributes, ...), linked to the first root, from that root's start to the last repeat's
    end."""
    sample = summary.sample
    trace_id, span_id, trace_flags, start_time, name = summary.first
    context = SpanContext(
        trace_id=ids.generate_trace_id(),
        span_id=ids.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    attributes = dict(sample.attributes or {})
    attributes.update(summary_attributes(summary))
    first_context = SpanContext(
        trace_id, span_id, is_remote=False, trace_flags=TraceFlags(trace_flags)
    )
    links = (Link(first_context, LINK_ATTRIBUTES),) if first_context.is_valid else ()
    error = sample.status_code is StatusCode.ERROR
    return ReadableSpan(
        name=name,
        context=context,
        parent=None,
        resource=sample.resource,
        attributes=attributes,
        links=links,
        kind=sample.kind,
        status=Status(sample.status_code, sample.status_description if error else None),
        start_time=start_time,
        end_time=summary.last_time_ns,
        instrumentation_scope=sample.scope,
    )
