"""``CoalescingSpanProcessor``: repeated span trees become one exported tree + a summary span."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._fork import after_fork_in_child
from otelkit._validate import check_bool, check_positive, check_positive_int
from otelkit.coalesce._common import (
    flush_downstream,
    require_methods,
    shutdown_downstream,
    summary_attributes,
)
from otelkit.coalesce._forward import batch_span_queue
from otelkit.coalesce._keys import (
    ResourceTokens,
    SpanKey,
    resolve_span_key,
    span_fields_key,
    span_name_key,
)
from otelkit.coalesce._metrics import CoalesceMetrics
from otelkit.coalesce._snapshots import Snapshot, SpanSnapshots
from otelkit.coalesce._trees import Trees
from otelkit.coalesce._window import (
    EMIT,
    Coalescer,
    Summary,
)
from otelkit.errors import OptionTypeError

__all__ = ["CoalescingSpanProcessor"]

_WHERE = "CoalescingSpanProcessor"
_COMPONENT = "coalesce.traces"
# The SDK's own processors do nothing in on_start/_on_ending (called on every span).
# (getattr with a default: an SDK without the private _on_ending must not break the import)
_SDK_NOOPS = frozenset(
    hook
    for cls in (SpanProcessor, BatchSpanProcessor, SimpleSpanProcessor)
    for name in ("on_start", "_on_ending")
    if (hook := getattr(cls, name, None)) is not None
)
_LINK_ATTRIBUTES = {"otelkit.coalesce.link": "first"}
_ERROR = StatusCode.ERROR
_NAME_INDEX = 3
"""Where the name sits in the default key (token, scope, kind, name, status, error type)."""


class CoalescingSpanProcessor(SpanProcessor):
    """Wrap ``downstream`` (typically a ``BatchSpanProcessor``) so repeated trees merge.

    Decisions are made per *local trace tree* when its local root (a span without a parent
    or with a remote one) ends; children that end earlier are held until then. The root's
    key (default ``"name"``: scope, kind, root name, status code, exception type; or
    :func:`~otelkit.coalesce.attributes_key`, or any callable(ReadableSpan) -> Hashable)
    goes through a fixed ``window``: the first tree of a key is exported whole, repeats are
    dropped whole and counted, and at window end one summary span (the root's name and
    attributes plus ``otelkit.coalesce.*``, linked to the first exported root) stands for
    them. Only trees whose root passes ``predicate`` (default: all) are coalesced. With
    ``per_resource`` (default) the root's service identity (its resource less the
    attributes naming one process) is part of the key: trees from the processes of one
    service merge, trees of different services do not; ``per_resource=False`` merges all.

    No exported span ever has a dropped parent: a tree whose children waited more than
    ``max_hold`` seconds for their root, or that met the ``max_held_spans`` bound, passes
    through uncoalesced, root included (counted as ``otelkit.coalesce.overflow``).
    """

    def __init__(
        self,
        downstream: SpanProcessor,
        *,
        window: float = 10.0,
        key: str | SpanKey = "name",
        predicate: Callable[[ReadableSpan], bool] | None = None,
        max_keys: int = 10_000,
        max_held_spans: int = 10_000,
        max_hold: float = 30.0,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
        per_resource: bool = True,
    ) -> None:
        require_methods(
            "downstream",
            downstream,
            ("on_start", "on_end", "force_flush", "shutdown"),
            "SpanProcessor",
        )
        check_positive(_WHERE, "window", window)
        check_positive_int(_WHERE, "max_keys", max_keys)
        if predicate is not None and not callable(predicate):
            raise OptionTypeError(
                f"predicate must be a callable(ReadableSpan) -> bool or None, "
                f"got {type(predicate).__name__}"
            )
        self._key = resolve_span_key(key)
        by_name = self._key is span_name_key
        self._predicate = predicate
        self._clock = clock if clock is not None else REAL_CLOCK
        self._downstream = downstream
        self._max_held = check_positive_int(_WHERE, "max_held_spans", max_held_spans)
        self._max_hold = check_positive(_WHERE, "max_hold", max_hold)
        self._resources = ResourceTokens(
            per_resource=check_bool(_WHERE, "per_resource", per_resource)
        )
        self._ids = RandomIdGenerator()
        self._metrics = CoalesceMetrics(meter_provider, "traces")
        self._snapshots = SpanSnapshots()
        self._engine: Coalescer[Snapshot] = Coalescer(
            window=window,
            on_summary=self._emit_summary,
            max_keys=max_keys,
            clock=self._clock,
            label=_COMPONENT,
            on_tick=self._publish,
            capture=self._snapshots.capture,
            hint_index=_NAME_INDEX if by_name else None,
            key_of_first=self._key_of_first if by_name else None,
        )
        for name in ("on_start", "_on_ending"):
            if getattr(type(downstream), name, None) in _SDK_NOOPS:
                # Call the downstream's no-op directly, without a wrapper frame per span.
                setattr(self, name, getattr(downstream, name))
        # For exactly a BatchSpanProcessor, on_end makes its sampled check and queues the
        # span itself (see _forward).
        self._queue_span = batch_span_queue(downstream)
        # The default key and no predicate: roots take the fast path in on_end.
        self._plain = by_name and predicate is None
        self._closed = False
        self._dropped = 0
        self._passed = 0
        self._reset()
        after_fork_in_child(self, CoalescingSpanProcessor._reset)

    def _reset(self) -> None:
        # Also the fork hook: a child starts with nothing held (the parent exports its own).
        self._lock = threading.Lock()
        self._trees = Trees(max_held=self._max_held, max_hold=self._max_hold)
        self._timer: TimerHandle | None = None

    @property
    def downstream(self) -> SpanProcessor:
        """The wrapped processor."""
        return self._downstream

    @property
    def coalescer(self) -> Coalescer[Snapshot]:
        """The engine that decides per root (counters ``suppressed``, ``overflow``, ...)."""
        return self._engine

    @property
    def held_spans(self) -> int:
        """Spans waiting for their local root now."""
        return self._trees.held_count

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Forward to the downstream processor. Never raises."""
        try:
            self._downstream.on_start(span, parent_context=parent_context)
        except Exception as exc:  # noqa: BLE001 - never reach the instrumented code
            report_internal_error(_COMPONENT + ".downstream", exc)

    def _on_ending(self, span: Span) -> None:
        try:
            self._downstream._on_ending(span)
        except Exception as exc:  # noqa: BLE001 - never reach the instrumented code
            report_internal_error(_COMPONENT + ".downstream", exc)

    def on_end(self, span: ReadableSpan) -> None:
        """Hold, forward or drop ``span`` as its local tree's verdict says. Never raises."""
        context = None
        try:
            # A SpanContext is a tuple (trace_id, span_id, is_remote, trace_flags, ...):
            # indexing it skips a Python-level property call per field.
            context = span._context
            parent = span._parent
            trees = self._trees
            if context is None or self._closed:
                forward: ReadableSpan | list[ReadableSpan] = span
            elif parent is not None and not parent[2]:  # a local parent: a child
                forward = self._end_child(span, context[0], context[1], parent[1])
            elif self._plain and not trees.entries and not trees.forced_ids:
                # A local root while nothing is held or forced anywhere, default key, no
                # predicate: it decides alone (the path of nearly every root). Unless it
                # failed (its key then needs its events), a window opens under its name
                # alone, and its key is built only if that name comes again.
                if span._status._status_code is not _ERROR and self._engine.sight(
                    span._name, span, span._end_time
                ):
                    forward = span  # a new name (or overflow)
                else:
                    forward = self._fast_root(span, context)
            else:
                forward = self._end_root(span, context)
        except Exception as exc:  # noqa: BLE001 - when in doubt, forward: lose nothing
            report_internal_error(_COMPONENT, exc)
            forward = span
        if forward is span:
            try:
                queue = self._queue_span
                if queue is None or context is None:
                    self._downstream.on_end(span)
                elif context[3] & 1:  # sampled (see __init__)
                    queue(span)
            except Exception as exc:  # noqa: BLE001 - never reach the instrumented code
                report_internal_error(_COMPONENT + ".downstream", exc)
        else:
            for item in forward:  # type: ignore[union-attr]
                self._forward(item)

    def _fast_root(
        self, span: ReadableSpan, context: SpanContext
    ) -> ReadableSpan | list[ReadableSpan]:
        # The tree lock is taken only if the root is dropped.
        key = self._root_key(span)
        if key is None or self._engine.offer(key, span, span._end_time) is EMIT:
            return span
        return self._drop_root(span, context)

    def _end_child(
        self, span: ReadableSpan, trace_id: int, span_id: int, parent_id: int
    ) -> ReadableSpan | list[ReadableSpan]:
        released: list[ReadableSpan] = []
        with self._lock:
            trees = self._trees
            entry = trees.entries.get(trace_id)
            if trees.is_forced(trace_id, entry):
                verdict: bool | None = True
            else:
                verdict = entry.verdicts.get(parent_id) if entry is not None else None
                if verdict is None and parent_id in trees.dropped_ids:
                    verdict = False
            if verdict is not None:
                if entry is None:
                    if verdict:
                        return span
                    trees.remember_dropped(span_id)
                    self._dropped += 1
                    return released
                members = trees.decide(entry, span_id, verdict)
                if verdict:
                    return [span, *members]
                self._dropped += 1 + len(members)
                return released
            if entry is None:
                entry = trees.create(trace_id, self._clock.monotonic(), released)
                self._arm()
            if not trees.hold(entry, span):
                trees.force(entry, released)
                released.append(span)
            self._passed += len(released)
        return released

    def _root_key(self, span: ReadableSpan) -> Hashable | None:
        """The root's key, or ``None`` when it is not to be coalesced (predicate, or a
        failing key function or predicate)."""
        try:
            if self._predicate is None or self._predicate(span):
                token = self._resources.token(span._resource)
                if self._key is span_name_key:
                    return (token, *span_name_key(span))
                return (token, self._key(span))
        except Exception as exc:  # noqa: BLE001 - a failing key or predicate: do not coalesce
            report_internal_error(_COMPONENT + ".key", exc)
        return None

    def _drop_root(
        self, span: ReadableSpan, context: SpanContext
    ) -> ReadableSpan | list[ReadableSpan]:
        # The engine said SUPPRESS on the fast path (nothing was held or forced then).
        trace_id, span_id = context[0], context[1]
        trees = self._trees
        with self._lock:
            entry = trees.entries.get(trace_id)  # children may have arrived meanwhile
            if trees.is_forced(trace_id, entry):
                # A race with a forced release (overload): export rather than orphan.
                trees.root_ended(trace_id)
                return span
            members = [] if entry is None else trees.decide(entry, span_id, False)
            trees.remember_dropped(span_id)
            self._dropped += 1 + len(members)
        return []

    def _end_root(
        self, span: ReadableSpan, context: SpanContext
    ) -> ReadableSpan | list[ReadableSpan]:
        key = self._root_key(span)
        trees = self._trees
        trace_id, span_id = context[0], context[1]
        with self._lock:
            entry = trees.entries.get(trace_id)
            if trees.is_forced(trace_id, entry):
                trees.root_ended(trace_id)
                verdict = True
            elif key is None:
                verdict = True
            else:
                verdict = self._engine.offer(key, span, span._end_time) is EMIT
            if entry is None:
                if verdict:
                    return span
                # Remember the drop, so children that end after their root are dropped too.
                trees.remember_dropped(span_id)
                self._dropped += 1
                return []
            members = trees.decide(entry, span_id, verdict)
            if verdict:
                return [*members, span]
            trees.remember_dropped(span_id)
            self._dropped += 1 + len(members)
            return []

    def _forward(self, span: ReadableSpan) -> None:
        try:
            self._downstream.on_end(span)
        except Exception as exc:  # noqa: BLE001 - a failing downstream never reaches the caller
            report_internal_error(_COMPONENT + ".downstream", exc)

    def _arm(self) -> None:
        # Under self._lock: one timer for the oldest entry's deadline.
        if self._timer is None:
            deadline = self._trees.next_deadline()
            if deadline is not None:
                delay = max(0.0, deadline - self._clock.monotonic())
                self._timer = self._clock.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        try:
            released: list[ReadableSpan] = []
            with self._lock:
                self._timer = None
                self._trees.expire(self._clock.monotonic(), released)
                self._passed += len(released)
                self._arm()
            for span in released:
                self._forward(span)
            self._publish()
        except Exception as exc:  # noqa: BLE001 - runs on the timer thread: contain
            report_internal_error(_COMPONENT, exc)

    def _release_all(self) -> None:
        released: list[ReadableSpan] = []
        with self._lock:
            self._trees.release_all(released)
            self._passed += len(released)
        for span in released:
            self._forward(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export held spans (their trees pass uncoalesced) and pending summaries, then
        flush downstream within what is left of ``timeout_millis``."""
        deadline = REAL_CLOCK.monotonic() + timeout_millis / 1000
        self._release_all()
        self._engine.flush()
        self._publish()
        return flush_downstream(self._downstream, deadline, _COMPONENT)

    def shutdown(self) -> None:
        """Export held spans and pending summaries, stop coalescing, shut downstream down."""
        self._closed = True
        self._release_all()
        self._engine.close()
        self._publish()
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        shutdown_downstream(self._downstream, _COMPONENT)

    def _publish(self) -> None:
        _, overflow = self._engine.take_counts()
        with self._lock:
            dropped, passed = self._dropped, self._passed
            self._dropped = self._passed = 0
        self._metrics.add(dropped, overflow + passed)

    def _key_of_first(self, name: Hashable, first: Snapshot) -> Hashable:
        # The key of a window opened by its name alone (never a failed root's): as
        # _root_key builds it.
        kept = self._snapshots.first(first)
        return (
            self._resources.token(kept.resource),
            *span_fields_key(kept.scope, kept.kind, str(name), kept.status_code, None),
        )

    def _emit_summary(self, summary: Summary[Snapshot]) -> None:
        self._downstream.on_end(self._summary_span(summary))

    def _summary_span(self, summary: Summary[Snapshot]) -> ReadableSpan:
        first = self._snapshots.first(summary.first)
        context = SpanContext(
            trace_id=self._ids.generate_trace_id(),
            span_id=self._ids.generate_span_id(),
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
        links = (Link(first_context, _LINK_ATTRIBUTES),) if first_context.is_valid else ()
        description = first.status_description if first.status_code is _ERROR else None
        return ReadableSpan(
            name=first.name,
            context=context,
            parent=None,
            resource=first.resource,
            attributes=attributes,
            links=links,
            kind=first.kind,
            status=Status(first.status_code, description),
            start_time=first.start_time,
            end_time=summary.last_time_ns,
            instrumentation_scope=first.scope,
        )
