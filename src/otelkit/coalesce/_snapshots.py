"""What a window keeps of its first record or root span until the window ends.

Flat tuples of atomic values (strings, numbers, tuples of them): cheap to build, they keep
none of the SDK's objects alive, and the garbage collector stops tracking them, so an open
window per distinct key costs almost no GC work. The objects a summary needs back (resource,
instrumentation scope) are interned once per source in :class:`Sources`.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otelkit.coalesce._window import reset_after_fork

__all__ = [
    "FirstLog",
    "FirstSpan",
    "Snapshot",
    "Sources",
    "capture_log",
    "capture_span",
    "unflatten",
]

Snapshot = tuple[Any, ...]
"""A snapshot as kept: an exact tuple (the GC untracks only exact tuples, not NamedTuples);
``FirstLog._make(snapshot)`` / ``FirstSpan._make(snapshot)`` name its fields."""
Source = int | tuple[Any, Any, Any]
"""An interned ``(resource, scope, limits)`` id, or the triple itself once :class:`Sources`
is full."""


class Sources:
    """Interns ``(resource, instrumentation scope, limits)`` triples as small ints (the
    limits of a log record; ``None`` for spans).

    Bounded: beyond ``MAX`` triples the triple itself is kept in the snapshot (correct, just
    tracked by the GC). Interned triples stay referenced, so object ids are never reused.
    """

    MAX = 4096

    def __init__(self) -> None:
        self.last: tuple[Any, Any, Any, int] = (None, None, None, -1)
        """The most recent (resource, scope, limits, id): replaced whole, never mutated."""
        self._ids: dict[tuple[int, int, int], int] = {}
        self._triples: list[tuple[Any, Any, Any]] = []
        self._reset_lock()
        reset_after_fork(self._reset_lock)

    def _reset_lock(self) -> None:
        self._lock = threading.Lock()

    def intern(self, resource: Any, scope: Any, limits: Any = None) -> Source:
        """The id of ``(resource, scope, limits)`` (the capture functions inline the check
        against :attr:`last`)."""
        last = self.last
        if last[0] is resource and last[1] is scope and last[2] is limits:
            return last[3]
        ids = (id(resource), id(scope), id(limits))
        with self._lock:
            source = self._ids.get(ids)
            if source is None:
                if len(self._triples) >= self.MAX:
                    return (resource, scope, limits)
                source = len(self._triples)
                self._triples.append((resource, scope, limits))
                self._ids[ids] = source
            self.last = (resource, scope, limits, source)
        return source

    def resolve(self, source: Source) -> tuple[Any, Any, Any]:
        """The ``(resource, scope, limits)`` of ``source``."""
        return self._triples[source] if type(source) is int else source  # type: ignore[return-value]


class FirstLog(NamedTuple):
    """What a window keeps of its first log record."""

    severity_text: str | None
    severity_value: int | None
    body: Any
    attributes: tuple[Any, ...]
    """Flat: every name, then every value (see :func:`unflatten`)."""
    event_name: str | None
    trace_id: int
    span_id: int
    trace_flags: int
    source: Source


def unflatten(flat: tuple[Any, ...]) -> dict[str, Any]:
    """The attributes kept flat in a snapshot (names, then values) as a dict."""
    half = len(flat) // 2
    return dict(zip(flat[:half], flat[half:], strict=True))


def capture_log(sources: Sources, record: ReadWriteLogRecord | ReadableLogRecord) -> Snapshot:
    """The fields of :class:`FirstLog` for ``record``, as a plain tuple."""
    lr = record.log_record
    attributes: Any = lr.attributes
    if attributes:
        attributes = getattr(attributes, "_dict", attributes)  # plain_attributes, inlined
        # One flat tuple (names, then values) instead of a tuple per attribute.
        attributes = (*attributes.keys(), *attributes.values())
    else:
        attributes = ()
    resource = record.resource
    scope = record.instrumentation_scope
    limits = record.limits
    last = sources.last  # Sources.intern's fast path, inlined
    source = (
        last[3]
        if last[0] is resource and last[1] is scope and last[2] is limits
        else sources.intern(resource, scope, limits)
    )
    return (
        lr.severity_text,
        getattr(lr.severity_number, "_value_", None),
        lr.body,
        attributes,
        lr.event_name,
        lr.trace_id or 0,
        lr.span_id or 0,
        int(lr.trace_flags or 0),
        source,
    )


class FirstSpan(NamedTuple):
    """What a window keeps of its first root span."""

    name: str
    kind_value: int
    status_value: int
    status_description: str | None
    attributes: tuple[Any, ...]
    """Flat: every name, then every value (see :func:`unflatten`)."""
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
    attributes: Any = span._attributes
    if attributes:
        attributes = getattr(attributes, "_dict", attributes)  # plain_attributes, inlined
        attributes = (*attributes.keys(), *attributes.values())
    else:
        attributes = ()
    resource = span._resource
    scope = span._instrumentation_scope
    last = sources.last  # Sources.intern's fast path, inlined
    source = (
        last[3]
        if last[0] is resource and last[1] is scope and last[2] is None
        else sources.intern(resource, scope)
    )
    # A SpanContext is a tuple (trace_id, span_id, is_remote, trace_flags, ...): indexing
    # it skips a Python-level property call per field.
    context = span._context
    status = span._status
    return (
        span._name,
        span._kind._value_,
        status._status_code._value_,
        status._description,
        attributes,
        source,
        context[0] if context is not None else 0,
        context[1] if context is not None else 0,
        int(context[3]) if context is not None else 0,
        span._start_time,
    )
