"""Logs shortcuts: an SDK log record built without the constructors' re-cleaning, and the
readable copy a batch processor queues built without ``copy.copy`` and the dataclass's
constructor."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from threading import Lock, RLock
from time import time_ns
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordLimits, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import INVALID_SPAN, TraceFlags, set_span_in_context

from otelkit._sdk._check import checked

__all__ = [
    "FAST_LOG_RECORDS_OK",
    "READABLE_COPY_OK",
    "attribute_limits",
    "fast_log_records",
    "public_log_record",
    "readable_copy",
    "readable_record",
]

_new = object.__new__


def attribute_limits(limits: LogRecordLimits) -> tuple[int | None, int | None]:
    """``(count limit, value length limit)`` a ``ReadWriteLogRecord`` applies: the
    ``max_log_record_*`` fields where the SDK has them (newer releases), else the
    ``max_attributes`` / ``max_attribute_length`` that older releases apply to log records."""
    if hasattr(limits, "max_log_record_attributes"):
        return limits.max_log_record_attributes, limits.max_log_record_attribute_length
    return limits.max_attributes, limits.max_attribute_length


def public_log_record(
    record_class: type[LogRecord], fields: tuple[Any, ...], limits: LogRecordLimits
) -> ReadWriteLogRecord:
    """The record as the SDK's public constructors build it (attribute cleaning, limits).

    ``fields`` as ``otelkit.relay._records.LogFields``."""
    (ts, observed, context, trace_id, span_id, flags, text, number, body, attrs, event) = fields[
        :11
    ]
    record = record_class(
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


# The attributes of the records built here share one lock (of the type the layout's
# constructor makes). It guards a mutation of one mapping at a time and no mutation takes
# another mapping's lock, so sharing it is safe; relayed records are seldom mutated, and a
# lock of their own would cost each record an allocation that the garbage collector counts
# while the record waits in a batch queue.
_SHARED_LOCK = Lock()
_SHARED_RLOCK = RLock()


def _bounded_newer(attrs: Any, maxlen: int | None, dropped: int, max_value_len: int | None) -> Any:
    # BoundedAttributes as 1.41 and later construct it, field by field in its order: the
    # values stay inline in the object (no per-object dict), which spares the collector.
    bounded = _new(BoundedAttributes)
    bounded._dict = attrs
    bounded.maxlen = maxlen
    bounded.dropped = dropped
    bounded.max_value_len = max_value_len
    bounded._lock = _SHARED_LOCK
    bounded._immutable = False
    return bounded


def _bounded_older(attrs: Any, maxlen: int | None, dropped: int, max_value_len: int | None) -> Any:
    # BoundedAttributes as 1.40 constructs it (an RLock, the extended-attributes flag).
    bounded: Any = _new(BoundedAttributes)
    bounded.maxlen = maxlen
    bounded.dropped = dropped
    bounded.max_value_len = max_value_len
    bounded._extended_attributes = True
    bounded._dict = attrs
    bounded._lock = _SHARED_RLOCK
    bounded._immutable = False
    return bounded


_LAYOUTS = {"newer": _bounded_newer, "older": _bounded_older}
_bounded = _bounded_newer
_with_exception = True  # whether the API's LogRecord has an ``exception`` field


def _fast_many(
    record_class: type[LogRecord],
    rows: Iterable[tuple[Any, ...]],
    limits: LogRecordLimits,
) -> list[Any]:
    # One loop for many records (the relay host builds a chunk of a frame's records at
    # once): the fields are set in the order the constructors set them.
    maxlen, max_value_len = attribute_limits(limits)
    bounded, with_exception = _bounded, _with_exception
    out: list[Any] = []
    append = out.append
    for fields in rows:
        (ts, observed, context, trace_id, span_id, flags, text, number, body, attrs, event,
         dropped, resource, scope, plain) = fields  # fmt: skip
        if not plain:  # attributes the constructors must clean and limit
            append(public_log_record(record_class, fields, limits))
            continue
        record = _new(record_class)
        record.timestamp = ts
        record.observed_timestamp = observed if observed is not None else time_ns()
        record.context = context
        record.trace_id = trace_id
        record.span_id = span_id
        record.trace_flags = flags
        record.severity_text = text
        record.severity_number = number
        record.body = body
        record.attributes = bounded(attrs, maxlen, dropped, max_value_len)
        record.event_name = event
        if with_exception:
            record.exception = None  # type: ignore[attr-defined,unused-ignore]
        made = _new(ReadWriteLogRecord)
        made.log_record = record
        made.resource = resource
        made.instrumentation_scope = scope
        made.limits = limits
        append(made)
    return out


def _same_shape(a: Any, b: Any) -> bool:
    return type(a) is type(b) and list(vars(a)) == list(vars(b))


class _CheckRecord(LogRecord):
    __slots__ = ()


def _agrees() -> bool:
    limits = LogRecordLimits()
    context = set_span_in_context(INVALID_SPAN, Context())
    fields: tuple[Any, ...] = (
        *(1, 2, context, 0, 0, TraceFlags(0), "INFO", SeverityNumber.INFO, "b", {"a": 1}),
        *(None, 0, Resource({"k": "v"}), InstrumentationScope("c"), True),
    )
    fast = _fast_many(_CheckRecord, (fields,), limits)[0]
    slow = public_log_record(_CheckRecord, fields, limits)
    fast_attributes, slow_attributes = fast.log_record.attributes, slow.log_record.attributes
    return (
        _same_shape(fast, slow)
        and _same_shape(fast.log_record, slow.log_record)
        and _same_shape(fast_attributes, slow_attributes)
        and {k: v for k, v in vars(fast.log_record).items() if k != "attributes"}
        == {k: v for k, v in vars(slow.log_record).items() if k != "attributes"}
        and {k: v for k, v in vars(fast_attributes).items() if k != "_lock"}
        == {k: v for k, v in vars(slow_attributes).items() if k != "_lock"}
        and type(vars(fast_attributes).get("_lock")) is type(vars(slow_attributes).get("_lock"))
        and dict(fast_attributes or {}) == dict(slow_attributes or {})
    )


def _check_fast_log_record() -> bool:
    """The direct construction builds what the SDK's constructors build: same classes,
    same fields in the same order, equal values. Tries each known layout and keeps the
    first that agrees."""
    global _bounded, _with_exception
    _with_exception = "exception" in vars(_CheckRecord(body="x"))
    for layout in _LAYOUTS.values():
        _bounded = layout
        try:
            if _agrees():
                return True
        except Exception:  # noqa: BLE001 - a layout that does not fit: try the next
            continue
    return False


FAST_LOG_RECORDS_OK = checked("fast_log_records", _check_fast_log_record)
"""Whether :data:`fast_log_records` may skip the SDK's constructors with this SDK."""


def _public_many(
    record_class: type[LogRecord], rows: Iterable[tuple[Any, ...]], limits: LogRecordLimits
) -> list[ReadWriteLogRecord]:
    return [public_log_record(record_class, fields, limits) for fields in rows]


fast_log_records: Callable[
    [type[LogRecord], Iterable[tuple[Any, ...]], LogRecordLimits], list[ReadWriteLogRecord]
]
fast_log_records = _fast_many if FAST_LOG_RECORDS_OK else _public_many
"""A record for each of many rows of fields, in one loop: for a row whose ``plain`` (its
last field) is true, what :func:`public_log_record` builds for plain attributes (scalar
values, non-empty keys, within the count limit, no value length limit) without re-cleaning
them; :func:`public_log_record`'s for any other row, and for every row when
:data:`FAST_LOG_RECORDS_OK` is false."""


# -- the readable copy otelkit's batch processor queues ---------------------------------


def readable_record(record: ReadWriteLogRecord, api: LogRecord | None = None) -> ReadableLogRecord:
    """``record`` as a ``ReadableLogRecord`` over ``api`` (by default its own API record,
    not copied), built with the public constructor."""
    resource = record.resource
    return ReadableLogRecord(
        log_record=record.log_record if api is None else api,
        resource=resource if resource is not None else Resource.create({}),
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )


def _readable_copy_public(record: ReadWriteLogRecord) -> ReadableLogRecord:
    # What BatchLogRecordProcessor.on_emit builds: a shallow copy of the API record with an
    # empty context (the queue must not keep the caller's context alive).
    api = copy.copy(record.log_record)
    api.context = Context()
    return readable_record(record, api)


def _readable_copy_private(record: ReadWriteLogRecord) -> ReadableLogRecord:
    # The same, without copy.copy's Python-level dispatch and the frozen dataclass's
    # __init__ (which sets each field through object.__setattr__).
    api: Any = record.log_record
    if type(api) is LogRecord:
        copied = _new(LogRecord)
        copied.__dict__.update(api.__dict__)
    else:
        copied = copy.copy(api)
    copied.context = Context()
    resource = record.resource
    readable = _new(ReadableLogRecord)
    readable.__dict__.update(
        log_record=copied,
        resource=resource if resource is not None else Resource.create({}),
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )
    return readable


def _check_record() -> ReadWriteLogRecord:
    api = LogRecord(
        timestamp=5,
        observed_timestamp=6,
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body="check",
        attributes={"code.line.number": 7},
        event_name="otelkit.check",
    )
    return ReadWriteLogRecord(
        api,
        resource=Resource.create({"service.name": "otelkit-check"}),
        instrumentation_scope=InstrumentationScope("otelkit.sdk-check"),
    )


def _check_readable_copy() -> bool:
    """The shortcut's copy equals the public construction's, field by field."""
    record = _check_record()
    ours, public = _readable_copy_private(record), _readable_copy_public(record)
    return (
        type(ours) is ReadableLogRecord
        and type(ours.log_record) is LogRecord
        and ours.log_record is not record.log_record
        and vars(ours.log_record) == vars(public.log_record)
        and vars(ours).keys() == vars(public).keys()
        and (ours.resource, ours.instrumentation_scope, ours.limits)
        == (public.resource, public.instrumentation_scope, public.limits)
        and ours.to_json() == public.to_json()
    )


READABLE_COPY_OK = checked("readable_copy", _check_readable_copy)
"""Whether :data:`readable_copy` builds the copy without the dataclass machinery."""

readable_copy: Callable[[ReadWriteLogRecord], ReadableLogRecord] = (
    _readable_copy_private if READABLE_COPY_OK else _readable_copy_public
)
"""What ``BatchLogRecordProcessor.on_emit`` queues for a record."""
