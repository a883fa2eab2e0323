"""What a window keeps of its first record or root span until the window ends.

Flat tuples of atomic values (strings, numbers, tuples of them): cheap to build, they keep
none of the SDK's objects alive, and the garbage collector stops tracking them, so an open
window per distinct key costs almost no GC work. The objects a summary needs back (resource,
instrumentation scope) are interned once per source in :class:`Sources`.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from opentelemetry.sdk._logs import LogRecordLimits, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otelkit.coalesce._keys import plain_attributes
from otelkit.coalesce._window import reset_after_fork

__all__ = ["FirstLog", "FirstSpan", "Snapshot", "Sources", "capture_log", "capture_span"]

Snapshot = tuple[Any, ...]
"""A snapshot as kept: an exact tuple (the GC untracks only exact tuples, not NamedTuples);
``FirstLog._make(snapshot)`` / ``FirstSpan._make(snapshot)`` name its fields."""
Source = int | tuple[Any, Any]
"""An interned ``(resource, scope)`` id, or the pair itself once :class:`Sources` is full."""


class Sources:
    """Interns ``(resource, instrumentation scope)`` pairs as small ints.

    Bounded: beyond ``MAX`` pairs the pair itself is kept in the snapshot (correct, just
    tracked by the GC). Interned pairs stay referenced, so object ids are never reused.
    """

    MAX = 4096

    def __init__(self) -> None:
        self.last: tuple[Any, Any, int] = (None, None, -1)
        """The most recent (resource, scope, id): replaced whole, never mutated."""
        self._ids: dict[tuple[int, int], int] = {}
        self._pairs: list[tuple[Any, Any]] = []
        self._reset_lock()
        reset_after_fork(self._reset_lock)

    def _reset_lock(self) -> None:
        self._lock = threading.Lock()

    def intern(self, resource: Any, scope: Any) -> Source:
        """The id of ``(resource, scope)``."""
        last = self.last
        if last[0] is resource and last[1] is scope:
            return last[2]
        with self._lock:
            source = self._ids.get((id(resource), id(scope)))
            if source is None:
                if len(self._pairs) >= self.MAX:
                    return (resource, scope)
                source = len(self._pairs)
                self._pairs.append((resource, scope))
                self._ids[(id(resource), id(scope))] = source
            self.last = (resource, scope, source)
        return source

    def resolve(self, source: Source) -> tuple[Any, Any]:
        """The ``(resource, scope)`` of ``source``."""
        return self._pairs[source] if type(source) is int else source  # type: ignore[return-value]


class FirstLog(NamedTuple):
    """What a window keeps of its first log record."""

    severity_text: str | None
    severity_value: int | None
    body: Any
    attributes: tuple[tuple[str, Any], ...]
    event_name: str | None
    trace_id: int
    span_id: int
    trace_flags: int
    source: Source
    limits: tuple[int | None, int | None] | None

    def log_record_limits(self) -> LogRecordLimits:
        """Limits equal to the first record's (the SDK's defaults if it had none)."""
        if self.limits is None:
            return LogRecordLimits()
        count, length = self.limits
        return LogRecordLimits(
            max_log_record_attributes=count, max_log_record_attribute_length=length
        )


def capture_log(sources: Sources, record: ReadWriteLogRecord | ReadableLogRecord) -> Snapshot:
    """The fields of :class:`FirstLog` for ``record``, as a plain tuple."""
    lr = record.log_record
    attributes = plain_attributes(lr.attributes)
    limits = record.limits
    return (
        lr.severity_text,
        getattr(lr.severity_number, "_value_", None),
        lr.body,
        tuple(attributes.items()) if attributes else (),
        lr.event_name,
        lr.trace_id or 0,
        lr.span_id or 0,
        int(lr.trace_flags or 0),
        sources.intern(record.resource, record.instrumentation_scope),
        None
        if limits is None
        else (limits.max_log_record_attributes, limits.max_log_record_attribute_length),
    )


class FirstSpan(NamedTuple):
    """What a window keeps of its first root span."""

    name: str
    kind_value: int
    status_value: int
    status_description: str | None
    attributes: tuple[tuple[str, Any], ...]
    source: Source
    trace_id: int
    span_id: int
    trace_flags: int
    start_time: int | None

    def kind(self) -> SpanKind:
        """The span kind."""
        return SpanKind(self.kind_value)

    def status(self) -> Status:
        """The span status (a description only goes with ERROR)."""
        code = StatusCode(self.status_value)
        return Status(code, self.status_description if code is StatusCode.ERROR else None)

    def context(self) -> SpanContext | None:
        """The span's context (for a link to it), if it had one."""
        if not self.trace_id:
            return None
        return SpanContext(self.trace_id, self.span_id, False, TraceFlags(self.trace_flags))


def capture_span(sources: Sources, span: ReadableSpan) -> Snapshot:
    """The fields of :class:`FirstSpan` for ``span``, as a plain tuple."""
    attributes = plain_attributes(span._attributes)
    context = span._context
    status = span._status
    return (
        span._name,
        span._kind._value_,
        status._status_code._value_,
        status._description,
        tuple(attributes.items()) if attributes else (),
        sources.intern(span._resource, span._instrumentation_scope),
        context.trace_id if context is not None else 0,
        context.span_id if context is not None else 0,
        int(context.trace_flags) if context is not None else 0,
        span._start_time,
    )
