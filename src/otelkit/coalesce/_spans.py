"""``CoalescingSpanProcessor``: repeated span trees become one exported tree + a summary span."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanContext

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._fork import after_fork_in_child
from otelkit._sdk.coalesce import call_on_ending
from otelkit._validate import check_bool, check_callable, check_positive, check_positive_int
from otelkit.coalesce._common import (
    flush_downstream,
    require_methods,
    shutdown_downstream,
)
from otelkit.coalesce._keys import ResourceTokens, SpanKey, resolve_span_key
from otelkit.coalesce._metrics import CoalesceMetrics
from otelkit.coalesce._summaries import SpanSample, span_origin, span_sample, summary_span
from otelkit.coalesce._trees import Trees
from otelkit.coalesce._window import EMIT, Coalescer, Summary

__all__ = ["CoalescingSpanProcessor"]

_WHERE = "CoalescingSpanProcessor"
_COMPONENT = "coalesce.traces"


class CoalescingSpanProcessor(SpanProcessor):
    """Wrap ``downstream`` (typically a ``BatchSpanProcessor``) so repeated trees merge.

    Decisions are made per *local trace tree* when its local root (a span without a parent
    or with a remote one) ends; children that end earlier are held until then. The root's
    key (default ``"name"``: scope, kind, root name, status code, exception type; or
    :func:`~otelkit.coalesce.attributes_key`, or any callable(ReadableSpan) -> Hashable)
    goes through a fixed ``window``: the first tree of a key is exported whole, repeats are
    dropped whole and counted, and at window end one summary span (the first root's name,
    the first repeated root's attributes, plus ``otelkit.coalesce.*``, linked to the first
    exported root) stands for
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
        methods = ("on_start", "on_end", "force_flush", "shutdown")
        require_methods("downstream", downstream, methods, "SpanProcessor")
        check_positive(_WHERE, "window", window)
        check_positive_int(_WHERE, "max_keys", max_keys)
        if predicate is not None:
            check_callable(_WHERE, "predicate", predicate)
        self._key = resolve_span_key(key)
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
        self._engine: Coalescer[SpanSample] = Coalescer(
            window=window,
            on_summary=self._emit_summary,
            max_keys=max_keys,
            clock=self._clock,
            label=_COMPONENT,
            on_tick=self._publish,
            remember=span_origin,
            capture=span_sample,
        )
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
        # The SDK's private hook before a span ends: forwarded, as a wrapper must.
        try:
            call_on_ending(self._downstream, span)
        except Exception as exc:  # noqa: BLE001 - never reach the instrumented code
            report_internal_error(_COMPONENT + ".downstream", exc)

    def on_end(self, span: ReadableSpan) -> None:
        """Hold, forward or drop ``span`` as its local tree's verdict says. Never raises."""
        try:
            context, parent = span.context, span.parent
            if context is None or self._closed:
                forward = [span]
            elif parent is not None and not parent.is_remote:  # a local parent: a child
                forward = self._end_child(span, context.trace_id, context.span_id, parent.span_id)
            else:
                forward = self._end_root(span, context)
        except Exception as exc:  # noqa: BLE001 - when in doubt, forward: lose nothing
            report_internal_error(_COMPONENT, exc)
            forward = [span]
        for item in forward:
            self._forward(item)

    def _end_child(
        self, span: ReadableSpan, trace_id: int, span_id: int, parent_id: int
    ) -> list[ReadableSpan]:
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
                        return [span]
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
                return (self._resources.token(span.resource), self._key(span))
        except Exception as exc:  # noqa: BLE001 - a failing key or predicate: do not coalesce
            report_internal_error(_COMPONENT + ".key", exc)
        return None

    def _end_root(self, span: ReadableSpan, context: SpanContext) -> list[ReadableSpan]:
        key = self._root_key(span)  # user code: outside the lock
        trees = self._trees
        trace_id, span_id = context.trace_id, context.span_id
        with self._lock:
            entry = trees.entries.get(trace_id)
            if trees.is_forced(trace_id, entry):
                trees.root_ended(trace_id)
                verdict = True
            elif key is None:
                verdict = True
            else:
                verdict = self._engine.offer(key, span, span.end_time) is EMIT
            if entry is None:
                if verdict:
                    return [span]
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

    def _emit_summary(self, summary: Summary[SpanSample]) -> None:
        self._downstream.on_end(summary_span(summary, self._ids))
