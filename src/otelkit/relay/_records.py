"""SDK log records for relayed data: the SDK's constructors, or the same fields set directly.

The host hands each relayed record to its processors as a ``ReadWriteLogRecord``. The SDK's
constructors clean every attribute value and apply the attribute limits; for a record whose
attributes come off the wire as plain scalars with non-empty keys, within the count limit and
with no value length limit, that work changes nothing, and it was most of what relaying a
record cost the host. :func:`build_log_record` then sets the fields the constructors would
set; :data:`FAST_OK` checks at import that this SDK's constructors set exactly those fields
(otherwise every record takes the constructors), and the tests compare both paths field by
field on random records.
"""

from __future__ import annotations

import copy
from threading import Lock
from time import time_ns
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import INVALID_SPAN, TraceFlags, set_span_in_context

__all__ = ["FAST_OK", "LogFields", "RelayedLogRecord", "build_log_record", "checked_log_record"]

LogFields = tuple[Any, ...]
"""A decoded log record: ``(timestamp, observed_timestamp, context, trace_id, span_id,
trace_flags, severity_text, severity_number, body, attributes, event_name,
dropped_attributes, resource, scope, plain)``; ``plain`` says the attributes may skip the
SDK's cleaning and limits."""

_new = object.__new__


class RelayedLogRecord(LogRecord):
    """An API ``LogRecord`` that arrived through the relay: the same fields, and a cheap
    shallow copy (the SDK's ``BatchLogRecordProcessor`` copies every record it queues, and
    ``copy.copy`` through ``__reduce_ex__`` cost the host several microseconds a record)."""

    __slots__ = ()

    def __copy__(self) -> RelayedLogRecord:
        twin = _new(RelayedLogRecord)
        twin.__dict__.update(self.__dict__)  # every field, also any a processor added
        return twin


def checked_log_record(fields: LogFields, limits: LogRecordLimits) -> ReadWriteLogRecord:
    """The record as the SDK's constructors build it (attribute cleaning and limits)."""
    (ts, observed, context, trace_id, span_id, flags, text, number, body, attrs, event) = fields[
        :11
    ]
    record = RelayedLogRecord(
        timestamp=ts,
        observed_timestamp=observed,
        context=context,
        severity_text=text,
        severity_number=number,
        body=body,
        attributes=attrs or None,
        event_name=event,
    )
    record.trace_id, record.span_id, record.trace_flags = trace_id, span_id, flags
    out = ReadWriteLogRecord(
        log_record=record, resource=fields[12], instrumentation_scope=fields[13], limits=limits
    )
    if fields[11]:
        out.log_record.attributes.dropped += fields[11]  # type: ignore[union-attr]
    return out


def build_log_record(fields: LogFields, limits: LogRecordLimits) -> ReadWriteLogRecord:
    """What :func:`checked_log_record` builds; without re-validation for plain attributes."""
    (ts, observed, context, trace_id, span_id, flags, text, number, body, attrs, event, dropped) = (
        fields[:12]
    )
    if not (fields[14] and FAST_OK):
        return checked_log_record(fields, limits)
    # Set one by one, in the constructors' order: the values stay inline in the objects
    # (no per-object dict), which also spares the garbage collector.
    bounded = _new(BoundedAttributes)
    bounded._dict = attrs
    bounded.maxlen = limits.max_log_record_attributes
    bounded.dropped = dropped
    bounded.max_value_len = limits.max_log_record_attribute_length
    bounded._lock = Lock()
    bounded._immutable = False
    record = _new(RelayedLogRecord)
    record.timestamp = ts
    record.observed_timestamp = observed if observed is not None else time_ns()
    record.context = context
    record.trace_id = trace_id
    record.span_id = span_id
    record.trace_flags = flags
    record.severity_text = text
    record.severity_number = number
    record.body = body
    record.attributes = bounded
    record.event_name = event
    record.exception = None
    out = _new(ReadWriteLogRecord)
    out.log_record = record
    out.resource = fields[12]
    out.instrumentation_scope = fields[13]
    out.limits = limits
    return out


def _same_shape(a: Any, b: Any) -> bool:
    return type(a) is type(b) and list(vars(a)) == list(vars(b))


def _fast_path_agrees() -> bool:
    """Whether the direct construction builds what the SDK's constructors build (same
    classes, same fields in the same order, equal values)."""
    try:
        limits = LogRecordLimits()
        context = set_span_in_context(INVALID_SPAN, Context())
        fields: LogFields = (
            *(1, 2, context, 0, 0, TraceFlags(0), "INFO", SeverityNumber.INFO, "b", {"a": 1}),
            *(None, 0, Resource({"k": "v"}), InstrumentationScope("c"), True),
        )
        global FAST_OK
        FAST_OK = True
        fast = build_log_record(fields, limits)
        slow = checked_log_record(fields, limits)
        fast_attributes, slow_attributes = fast.log_record.attributes, slow.log_record.attributes
        return (
            _same_shape(fast, slow)
            and _same_shape(fast.log_record, slow.log_record)
            and _same_shape(fast_attributes, slow_attributes)
            and {k: v for k, v in vars(fast.log_record).items() if k != "attributes"}
            == {k: v for k, v in vars(slow.log_record).items() if k != "attributes"}
            and {k: v for k, v in vars(fast_attributes).items() if k != "_lock"}
            == {k: v for k, v in vars(slow_attributes).items() if k != "_lock"}
            and dict(fast_attributes or {}) == dict(slow_attributes or {})
            and vars(copy.copy(slow.log_record)) == vars(slow.log_record)
        )
    except Exception:  # noqa: BLE001 - an SDK that differs simply gets the constructors
        return False


FAST_OK = False
"""Whether :func:`build_log_record` may skip the constructors (checked at import)."""
FAST_OK = _fast_path_agrees()
