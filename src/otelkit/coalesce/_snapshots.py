"""What a window keeps of its first log record or root span until the window ends.

A window opens for every distinct key, so capturing is on the hot path: plain attribute
loads, which the interpreter specialises (a span's fields come read in one call by the
seam's ``span_fields``; ``benchmarks/coalesce_steps.py`` times a snapshot). A window stays
open for seconds, so what it keeps is chosen for the garbage collector too. Every object that the collector tracks and a window keeps alive is
traversed again in every collection of its generation until the window closes; with all
keys distinct that is two snapshots per span and logging call, tens of thousands at once.
So a snapshot is a tuple of what the collector does not track: strings, ints, and tuples
of them. The collector stops tracking such a tuple in a collection that finds every
item untracked (so a tuple of tuples may take one collection per level), and then never
traverses it again.
Each field is reduced accordingly:

- the attributes become a tuple of ``(name, value)`` pairs (even a dict of plain values
  keeps a tuple that holds it tracked);
- enum members become their values, and the trace context becomes ints;
- the shared objects (resource, scope, log limits) become one small int, interned in the
  processor's :class:`LogSnapshots`/:class:`SpanSnapshots`. A hit costs identity checks
  against the previous record's objects.

:meth:`LogSnapshots.first`/:meth:`SpanSnapshots.first` turn a snapshot back into the
record's fields (:class:`FirstLog`/:class:`FirstSpan`) when a key or summary needs them.
A span's attributes are frozen when it ends. A log record's attributes are copied when its
window opens, so a later processor's changes to the record do not reach its summary.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

from otelkit._sdk.coalesce import plain_attributes

__all__ = ["FirstLog", "FirstSpan", "LogSnapshots", "Snapshot", "SpanSnapshots"]

Snapshot = tuple[Any, ...]
"""A kept first record: a plain tuple (see the module's docstring)."""

_NOTHING: Any = object()


class FirstLog(NamedTuple):
    """What a window keeps of its first log record (as :meth:`LogSnapshots.first` gives it)."""

    resource: Resource | None
    scope: InstrumentationScope | None
    limits: Any
    severity_text: str | None
    severity_number: SeverityNumber | None
    body: Any
    attributes: dict[str, Any] | None
    """A copy of the record's attributes, taken when its window opened."""
    event_name: str | None
    trace_id: int | None
    span_id: int | None
    trace_flags: int
    """The record's trace flags as a plain int."""


class FirstSpan(NamedTuple):
    """What a window keeps of its first root span (as :meth:`SpanSnapshots.first` gives it)."""

    name: str
    kind: SpanKind
    status_code: StatusCode
    status_description: str | None
    attributes: dict[str, Any] | None
    """A copy of the span's attributes (frozen when the span ended)."""
    resource: Resource
    scope: InstrumentationScope | None
    trace_id: int
    span_id: int
    trace_flags: int
    """The span's trace flags as a plain int."""
    start_time: int | None


class _Shared:
    """Small ints standing for combinations of shared objects (resources, scopes, limits).

    The objects stay referenced here, so their ids are never reused while they serve as
    the lookup key. Beyond ``_MAX`` combinations a snapshot holds the objects themselves;
    it is still correct, only tracked by the garbage collector. No lock: ``next()`` on a
    counter and dict stores are single C calls, and two threads interning the same objects
    at once get two valid ints.
    """

    _MAX = 1024

    def __init__(self) -> None:
        self._objects: dict[int, tuple[Any, ...]] = {}
        self._ints: dict[tuple[int, ...], int] = {}
        self._next = itertools.count()

    def intern(self, objects: tuple[Any, ...]) -> Any:
        """The int standing for ``objects`` (or ``objects`` itself once the table is full)."""
        ids = tuple(map(id, objects))
        number = self._ints.get(ids)
        if number is None:
            if len(self._objects) >= self._MAX:
                return objects
            number = next(self._next)
            self._objects[number] = objects  # before it can be found by ids
            self._ints[ids] = number
        return number

    def resolve(self, shared: Any) -> tuple[Any, ...]:
        """The objects that :meth:`intern` returned ``shared`` for."""
        return self._objects[shared] if type(shared) is int else shared


class LogSnapshots(_Shared):
    """Snapshots of first log records, for one processor (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._last: tuple[Any, ...] = (_NOTHING, _NOTHING, _NOTHING, None)

    def capture(self, record: Any) -> Snapshot:
        """The snapshot of a ``ReadWriteLogRecord`` (``Coalescer``'s ``capture``)."""
        resource, scope, limits = record.resource, record.instrumentation_scope, record.limits
        last = self._last  # replaced whole, never mutated
        if resource is last[0] and scope is last[1] and limits is last[2]:
            shared = last[3]
        else:
            shared = self.intern((resource, scope, limits))
            self._last = (resource, scope, limits, shared)
        log = record.log_record
        severity = log.severity_number
        attributes = plain_attributes(log.attributes)
        return (
            shared,
            log.severity_text,
            None if severity is None else severity._value_,
            log.body,
            tuple(attributes.items()) if attributes else None,
            log.event_name,
            log.trace_id,
            log.span_id,
            (log.trace_flags or 0) & 0xFF,
        )

    def first(self, snapshot: Snapshot) -> FirstLog:
        """The fields that ``snapshot`` keeps."""
        shared, text, severity, body, items, event_name, trace_id, span_id, flags = snapshot
        resource, scope, limits = self.resolve(shared)
        return FirstLog(
            resource=resource,
            scope=scope,
            limits=limits,
            severity_text=text,
            severity_number=None if severity is None else SeverityNumber(severity),
            body=body,
            attributes=None if items is None else dict(items),
            event_name=event_name,
            trace_id=trace_id,
            span_id=span_id,
            trace_flags=flags,
        )


class SpanSnapshots(_Shared):
    """Snapshots of first root spans, for one processor (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._last: tuple[Any, ...] = (_NOTHING, _NOTHING, None)

    def capture(self, fields: tuple[Any, ...]) -> Snapshot:
        """The snapshot of a ``ReadableSpan`` from its fields as the seam's ``span_fields``
        reads them (``Coalescer``'s ``capture``)."""
        name, kind, code, description, start, _, resource, scope, attributes, context = fields
        last = self._last
        if resource is last[0] and scope is last[1]:
            shared = last[2]
        else:
            shared = self.intern((resource, scope))
            self._last = (resource, scope, shared)
        attributes = plain_attributes(attributes)
        return (
            name,
            kind._value_,
            code._value_,
            description,
            tuple(attributes.items()) if attributes else None,
            shared,
            context[0],  # a SpanContext is a tuple: trace_id, span_id, is_remote, flags, ...
            context[1],
            context[3] & 0xFF,
            start,
        )

    def first(self, snapshot: Snapshot) -> FirstSpan:
        """The fields that ``snapshot`` keeps."""
        name, kind, status, description, items, shared, trace_id, span_id, flags, start = snapshot
        resource, scope = self.resolve(shared)
        return FirstSpan(
            name=name,
            kind=SpanKind(kind),
            status_code=StatusCode(status),
            status_description=description,
            attributes=None if items is None else dict(items),
            resource=resource,
            scope=scope,
            trace_id=trace_id,
            span_id=span_id,
            trace_flags=flags,
            start_time=start,
        )
