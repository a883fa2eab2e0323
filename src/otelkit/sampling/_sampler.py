"""``TailSampler``: decides each local trace tree when its root ends, spans and logs alike.

A *local tree* is a span that ended with no parent or a remote one (its local root) and the
spans below it that ended in this process (or were relayed to it). Children end before their
root, so they wait here, with the log records emitted in the tree's spans, until the root
ends; then the tree is kept whole (an error in it, or a slow root), or kept with the
configured probability decided from the trace id, or dropped whole: its spans and its log
records are then counted as sampled out (``otelkit.sampling.decisions``), which is not a
drop (emitted = exported + sampled out + dropped).

Bounds: at most ``max_held`` spans and log records wait. A trace whose items waited
``max_hold`` seconds, or the oldest one when the bound is met, passes unsampled (counted,
reason ``timeout`` or ``overflow``) and what comes of it later passes too. Verdicts are
remembered by span id (bounded, oldest forgotten first), so a span or log record that comes
after its tree was decided follows the verdict; one that comes after the verdict was
forgotten passes (counted, reason ``late``). Records without a sampled trace pass untouched.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._fork import after_fork_in_child
from otelkit.sampling._options import SamplingOptions

__all__ = ["SamplingLogRecordProcessor", "SamplingSpanProcessor", "TailSampler", "keeps_trace"]

_ERROR = StatusCode.ERROR
_COMPONENT = "sampling"
_TRACE_ID_LIMIT = (1 << 64) - 1

KEPT, DROPPED, PASSED = "kept", "dropped", "passed"


def keeps_trace(trace_id: int, probability: float) -> bool:
    """Whether a tree of ``trace_id`` with nothing special is kept at ``probability``:
    the rule of the SDK's ``TraceIdRatioBased`` sampler (the lower 64 bits of the id), so
    every process, and a head sampler with the same ratio, decides the same way."""
    return (trace_id & _TRACE_ID_LIMIT) < round(probability * (1 << 64))


class _Trace:
    """What waits for the local roots of one trace id."""

    __slots__ = ("deadline", "logs", "spans")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.spans: list[ReadableSpan] = []
        self.logs: list[ReadWriteLogRecord] = []


_Out = list[tuple[bool, Any]]  # (is_span, item) to forward, in order


class TailSampler:
    """The shared state of :class:`SamplingSpanProcessor` and
    :class:`SamplingLogRecordProcessor`; build both with :meth:`span_processor` and
    :meth:`log_processor`."""

    def __init__(
        self,
        options: SamplingOptions | None = None,
        *,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.options = (options or SamplingOptions()).validated()
        self._clock = clock or REAL_CLOCK
        self._threshold_ns = self.options.duration_threshold * 1e9
        self._counter = (
            (meter_provider or NoOpMeterProvider())
            .get_meter("otelkit.sampling")
            .create_counter(
                "otelkit.sampling.decisions",
                unit="{item}",
                description="Tail sampling decisions: local trees (signal=traces) and their spans "
                "and log records, by decision (kept, dropped, passed) and reason",
            )
        )
        self._remember = max(1024, 4 * self.options.max_held)
        self._spans_out: SpanProcessor | None = None
        self._logs_out: LogRecordProcessor | None = None
        self._listeners: list[Callable[[ReadableSpan, str, str], None]] = []
        self._reset()
        after_fork_in_child(self, TailSampler._reset)

    def _reset(self) -> None:
        # Also the fork hook: a child starts with nothing waiting (the parent forwards its own).
        self._lock = threading.Lock()
        self._pending: dict[int, _Trace] = {}
        self._held = 0
        self._verdicts: OrderedDict[int, bool] = OrderedDict()
        self._passing: OrderedDict[int, None] = OrderedDict()
        self._timer: TimerHandle | None = None
        self._counts: dict[tuple[str, str, str], int] = {}
        self._closed = False

    def span_processor(self, downstream: SpanProcessor) -> SpanProcessor:
        """The span processor that samples into ``downstream``."""
        self._spans_out = downstream
        return SamplingSpanProcessor(self, downstream)

    def log_processor(self, downstream: LogRecordProcessor) -> LogRecordProcessor:
        """The log record processor that samples into ``downstream``."""
        self._logs_out = downstream
        return SamplingLogRecordProcessor(self, downstream)

    def add_decision_listener(self, listener: Callable[[ReadableSpan, str, str], None]) -> None:
        """Call ``listener(root, decision, reason)`` after each local tree is decided
        (``decision`` is ``"kept"`` or ``"dropped"``; ``reason`` ``"error"``, ``"slow"`` or
        ``"probability"``), on the thread that ended the root. A listener that raises is
        contained and counted."""
        self._listeners.append(listener)

    @property
    def held(self) -> int:
        """Spans and log records waiting for their tree's decision now."""
        return self._held

    def counts(self) -> dict[tuple[str, str, str], int]:
        """``{(signal, decision, reason): n}`` so far (what the metric has counted)."""
        with self._lock:
            return dict(self._counts)

    def sampled_out(self, signal: str) -> int:
        """How many spans (``"spans"``) or log records (``"logs"``) were sampled out."""
        with self._lock:
            return sum(n for (s, d, _), n in self._counts.items() if s == signal and d == DROPPED)

    # -- decisions (under the lock) -----------------------------------------------------

    def _count(self, signal: str, decision: str, reason: str, n: int = 1) -> None:
        if n:
            key = (signal, decision, reason)
            self._counts[key] = self._counts.get(key, 0) + n
            self._counter.add(n, {"signal": signal, "decision": decision, "reason": reason})

    def _remember_verdict(self, span_id: int, keep: bool) -> None:
        verdicts = self._verdicts
        verdicts[span_id] = keep
        if len(verdicts) > self._remember:
            verdicts.popitem(last=False)

    def _entry(self, trace_id: int) -> _Trace:
        entry = self._pending.get(trace_id)
        if entry is None:
            entry = _Trace(self._clock.monotonic() + self.options.max_hold)
            self._pending[trace_id] = entry
            if self._timer is None:
                self._timer = self._clock.call_later(self.options.max_hold, self._on_timer)
        return entry

    def _release(self, trace_id: int, entry: _Trace, reason: str, out: _Out) -> None:
        # The whole entry passes unsampled; so does whatever of its trace comes later.
        del self._pending[trace_id]
        self._held -= len(entry.spans) + len(entry.logs)
        self._passing[trace_id] = None
        if len(self._passing) > self._remember:
            self._passing.popitem(last=False)
        self._count("traces", PASSED, reason)
        self._count("spans", PASSED, reason, len(entry.spans))
        self._count("logs", PASSED, reason, len(entry.logs))
        out.extend((True, span) for span in entry.spans)
        out.extend((False, log) for log in entry.logs)

    def _bound(self, out: _Out) -> None:
        while self._held > self.options.max_held and self._pending:
            trace_id = next(iter(self._pending))
            self._release(trace_id, self._pending[trace_id], "overflow", out)

    def _expire(self, now: float, out: _Out) -> None:
        pending = self._pending
        while pending:
            trace_id = next(iter(pending))
            entry = pending[trace_id]
            if entry.deadline > now:
                break
            self._release(trace_id, entry, "timeout", out)

    def _follow(self, signal: str, keep: bool, item: Any, is_span: bool, out: _Out) -> None:
        # An item whose tree was decided before it came: it follows the verdict.
        if keep:
            self._count(signal, KEPT, "verdict")
            out.append((is_span, item))
        else:
            self._count(signal, DROPPED, "verdict")

    def _decide_root(
        self, root: ReadableSpan, trace_id: int, root_id: int, out: _Out
    ) -> tuple[str, str]:
        entry = self._pending.get(trace_id)
        members: list[ReadableSpan] = []
        if entry is not None and entry.spans:
            members, entry.spans = _split_tree(entry.spans, root_id)
        error = root.status.status_code is _ERROR or any(
            span.status.status_code is _ERROR for span in members
        )
        start, end = root.start_time or 0, root.end_time or 0
        if error:
            keep, reason = True, "error"
        elif end - start >= self._threshold_ns:
            keep, reason = True, "slow"
        else:
            keep, reason = keeps_trace(trace_id, self.options.probability), "probability"
        ids = {root_id}
        for span in members:
            context = span.context
            if context is not None:
                ids.add(context.span_id)
        for span_id in ids:
            self._remember_verdict(span_id, keep)
        logs: list[ReadWriteLogRecord] = []
        if entry is not None:
            if entry.logs:
                logs = [log for log in entry.logs if log.log_record.span_id in ids]
                if logs:
                    entry.logs = [log for log in entry.logs if log.log_record.span_id not in ids]
            self._held -= len(members) + len(logs)
            if not entry.spans and not entry.logs:
                del self._pending[trace_id]
        decision = KEPT if keep else DROPPED
        self._count("traces", decision, reason)
        self._count("spans", decision, reason, 1 + len(members))
        self._count("logs", decision, reason, len(logs))
        if keep:
            out.extend((True, span) for span in members)
            out.append((True, root))
            out.extend((False, log) for log in logs)
        return decision, reason

    def _late_span(
        self, span: ReadableSpan, trace_id: int, span_id: int, keep: bool, out: _Out
    ) -> None:
        # A child that ended after its tree was decided, and the log records waiting for it.
        self._remember_verdict(span_id, keep)
        self._follow("spans", keep, span, True, out)
        entry = self._pending.get(trace_id)
        if entry is not None and entry.logs:
            logs = [log for log in entry.logs if log.log_record.span_id == span_id]
            if logs:
                entry.logs = [log for log in entry.logs if log.log_record.span_id != span_id]
                self._held -= len(logs)
                for log in logs:
                    self._follow("logs", keep, log, False, out)
                if not entry.spans and not entry.logs:
                    del self._pending[trace_id]

    # -- the hot paths ------------------------------------------------------------------

    def _on_end(self, span: ReadableSpan) -> None:
        """Hold, forward or drop ``span`` as its tree's decision says. Never raises."""
        out: _Out = []
        decided: tuple[str, str] | None = None
        try:
            context = span.context
            if context is None or not context.trace_flags.sampled or self._closed:
                out.append((True, span))
            else:
                trace_id, span_id = context.trace_id, context.span_id
                parent = span.parent
                with self._lock:
                    if trace_id in self._passing:
                        self._count("spans", PASSED, "released")
                        out.append((True, span))
                    elif parent is None or parent.is_remote:
                        decided = self._decide_root(span, trace_id, span_id, out)
                    else:
                        verdict = self._verdicts.get(parent.span_id)
                        if verdict is not None:
                            self._late_span(span, trace_id, span_id, verdict, out)
                        else:
                            self._entry(trace_id).spans.append(span)
                            self._held += 1
                            self._bound(out)
        except Exception as exc:  # noqa: BLE001 - when in doubt, forward: lose nothing
            report_internal_error(_COMPONENT, exc)
            out = [(True, span)]
        self._forward(out)
        if decided is not None and self._listeners:
            for listener in self._listeners:
                try:
                    listener(span, *decided)
                except Exception as exc:  # noqa: BLE001 - a listener never reaches the caller
                    report_internal_error(_COMPONENT + ".listener", exc)

    def _on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Hold, forward or drop ``log_record`` with its tree. Never raises."""
        out: _Out = []
        try:
            record = log_record.log_record
            trace_id, span_id = record.trace_id, record.span_id
            flags = record.trace_flags
            if not trace_id or not span_id or not (flags is not None and flags & 1):
                out.append((False, log_record))  # no sampled trace: untouched
            elif self._closed:
                out.append((False, log_record))
            else:
                with self._lock:
                    if trace_id in self._passing:
                        self._count("logs", PASSED, "released")
                        out.append((False, log_record))
                    else:
                        verdict = self._verdicts.get(span_id)
                        if verdict is not None:
                            self._follow("logs", verdict, log_record, False, out)
                        else:
                            self._entry(trace_id).logs.append(log_record)
                            self._held += 1
                            self._bound(out)
        except Exception as exc:  # noqa: BLE001 - when in doubt, forward: lose nothing
            report_internal_error(_COMPONENT, exc)
            out = [(False, log_record)]
        self._forward(out)

    def _forward(self, out: _Out) -> None:
        spans, logs = self._spans_out, self._logs_out
        for is_span, item in out:
            try:
                if is_span:
                    if spans is not None:
                        spans.on_end(item)
                elif logs is not None:
                    logs.on_emit(item)
            except Exception as exc:  # noqa: BLE001 - a failing downstream never reaches the caller
                report_internal_error(_COMPONENT + ".downstream", exc)

    def _on_timer(self) -> None:
        out: _Out = []
        try:
            with self._lock:
                self._timer = None
                now = self._clock.monotonic()
                self._expire(now, out)
                if self._pending and not self._closed:
                    first = next(iter(self._pending.values()))
                    self._timer = self._clock.call_later(
                        max(0.0, first.deadline - now), self._on_timer
                    )
        except Exception as exc:  # noqa: BLE001 - runs on the timer thread: contain
            report_internal_error(_COMPONENT, exc)
        self._forward(out)

    def _release_all(self, reason: str = "flush") -> None:
        """Everything waiting passes unsampled now (counted with ``reason``)."""
        out: _Out = []
        with self._lock:
            for trace_id in list(self._pending):
                self._release(trace_id, self._pending[trace_id], reason, out)
        self._forward(out)

    def _close(self) -> None:
        """Release what waits (reason ``shutdown``); from now on everything passes."""
        self._closed = True
        self._release_all("shutdown")
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


def _split_tree(
    spans: list[ReadableSpan], root_id: int
) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    """``(members, others)``: the spans of ``spans`` whose parent chain (through ``spans``)
    reaches ``root_id``, in their order, and the rest."""
    parent_of: dict[int, int] = {}
    for span in spans:
        context, parent = span.context, span.parent
        if context is not None and parent is not None:
            parent_of[context.span_id] = parent.span_id
    member: dict[int, bool] = {root_id: True}

    def belongs(span_id: int) -> bool:
        path = []
        current = span_id
        while current not in member:
            parent = parent_of.get(current)
            if parent is None:
                break
            path.append(current)
            current = parent
        verdict = member.get(current, False)
        for seen in path:
            member[seen] = verdict
        return verdict

    members: list[ReadableSpan] = []
    others: list[ReadableSpan] = []
    for span in spans:
        context = span.context
        (members if context is not None and belongs(context.span_id) else others).append(span)
    return members, others


class _SamplingControl:
    """``downstream``, ``force_flush`` and ``shutdown`` of both sampling processors."""

    def __init__(self, sampler: TailSampler, downstream: Any) -> None:
        self.sampler = sampler
        self._downstream = downstream

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Release what waits (it passes unsampled), then flush downstream."""
        self.sampler._release_all()
        return bool(self._downstream.force_flush(timeout_millis))

    def shutdown(self) -> None:
        """Release what waits, stop sampling, shut the downstream down."""
        self.sampler._close()
        self._downstream.shutdown()


class SamplingSpanProcessor(_SamplingControl, SpanProcessor):
    """Tail-samples ended spans into ``downstream`` (see :class:`TailSampler`)."""

    _downstream: SpanProcessor

    @property
    def downstream(self) -> SpanProcessor:
        """The wrapped processor."""
        return self._downstream

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Forward to the downstream processor."""
        self._downstream.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Hold, forward or drop ``span`` as its tree's decision says."""
        self.sampler._on_end(span)


class SamplingLogRecordProcessor(_SamplingControl, LogRecordProcessor):
    """Holds log records of traces until their tree is decided (see :class:`TailSampler`)."""

    _downstream: LogRecordProcessor

    @property
    def downstream(self) -> LogRecordProcessor:
        """The wrapped processor."""
        return self._downstream

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Hold, forward or drop ``log_record`` with its tree."""
        self.sampler._on_emit(log_record)
