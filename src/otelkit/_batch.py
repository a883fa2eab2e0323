"""otelkit's own batch processors: one bounded, counted queue shared by spans and logs.

The SDK's batch processors drop silently when their queue is full and their queue is
private. :class:`BatchCore` keeps the invariant otelkit is built on — every item offered
is exactly one of exported, counted dropped (by reason, on a :class:`DropLedger`) or still
queued — and exports through the public exporter interfaces only. Application threads
never block on it; a thread inside :func:`blocking_offers` (the relay's reader) waits for
room instead, so back-pressure reaches a place that can drop by policy and count.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import math
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelkit._clock import REAL_CLOCK, Clock
from otelkit._drops import DropLedger
from otelkit._errors import report_internal_error
from otelkit._fork import after_fork_in_child
from otelkit._relayed import RelayedLogRecord
from otelkit._sdk.context import suppress_instrumentation
from otelkit._sdk.logs import readable_copy, readable_record
from otelkit._threads import signals_blocked

__all__ = [
    "BatchCore",
    "BatchLogRecordProcessor",
    "BatchSpanProcessor",
    "BatchStats",
    "blocking_offers",
]

T = TypeVar("T")
_now = REAL_CLOCK.monotonic
_STOP_CHECK = 0.05  # how often a blocked offer asks should_stop()
_FAKE_TIME_POLL = 0.01  # how often a worker reads an injected clock (nothing notifies it)
_MAX_WAIT = 3600.0  # every wait is capped (loops re-check): past TIMEOUT_MAX it would raise
_blocking = threading.local()


@contextlib.contextmanager
def blocking_offers(should_stop: Callable[[], bool]) -> Iterator[None]:
    """On the current thread, offers to any BatchCore wait for room instead of dropping,
    until should_stop() is true (checked at least every 50 ms); then they drop and count as usual."""
    previous = getattr(_blocking, "should_stop", None)
    _blocking.should_stop = should_stop
    try:
        yield
    finally:
        _blocking.should_stop = previous


class BatchStats(NamedTuple):
    """One consistent snapshot: ``offered == exported + sum(dropped.values()) + queued``."""

    offered: int
    exported: int
    dropped: dict[str, int]
    queued: int  # waiting in the queue or inside a running export


def _check(owner: str, option: str, value: object, *, integer: bool) -> None:
    kind = "int" if integer else "number"
    types = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, types) or not 0 < value < math.inf:
        raise ValueError(f"{owner}: {option} must be a positive {kind}, got {value!r}")


class BatchCore(Generic[T]):
    """A bounded FIFO queue drained in batches by one lazily started daemon worker.

    ``export(batch)`` returns whether the batch was exported. The counters (:meth:`stats`)
    are in items; ``weight(item)``, if given, is how many records one item stands for on
    the drop ledger (a metrics batch counts its data points). ``clock`` times the schedule
    delay (tests pass a ``FakeClock``; deadlines of real waits read the real clock). After
    ``os.fork()`` the child's core starts empty: no queue, zeroed counters, no worker, not
    shut down."""

    def __init__(
        self,
        export: Callable[[list[T]], bool],
        *,
        signal: str,
        drops: DropLedger | None,
        max_queue_size: int = 2048,
        schedule_delay: float = 1.0,
        max_export_batch_size: int = 512,
        export_timeout: float = 30.0,
        name: str,
        weight: Callable[[T], int] | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        _check("BatchCore", "max_queue_size", max_queue_size, integer=True)
        _check("BatchCore", "schedule_delay", schedule_delay, integer=False)
        _check("BatchCore", "max_export_batch_size", max_export_batch_size, integer=True)
        _check("BatchCore", "export_timeout", export_timeout, integer=False)
        if max_export_batch_size > max_queue_size:
            raise ValueError(
                f"BatchCore: max_export_batch_size ({max_export_batch_size}) must be "
                f"<= max_queue_size ({max_queue_size})"
            )
        self._export = export
        self.signal = signal
        self.name = name
        self.export_timeout = float(export_timeout)
        self._drops = drops
        self._weight = weight  # records per item on the ledger (a metrics batch: its points)
        self.max_queue_size = max_queue_size
        self.schedule_delay = float(schedule_delay)
        self.max_export_batch_size = max_export_batch_size
        self._clock_now = clock.monotonic
        self._longest_wait = _MAX_WAIT if clock is REAL_CLOCK else _FAKE_TIME_POLL
        self._reset()
        after_fork_in_child(self, BatchCore._reset)

    def _reset(self) -> None:
        # Also the fork hook: the child has none of the parent's threads, and the queued
        # items are the parent's to export (so they are neither exported nor dropped here).
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the worker: full batch, flush, stop
        self._room = threading.Condition(self._lock)  # blocked offers: a batch left the queue
        self._progress = threading.Condition(self._lock)  # flush, shutdown: a batch resolved
        self._queue: collections.deque[T] = collections.deque()
        self._worker: threading.Thread | None = None
        self._shutdown = False
        self._stop = False
        self._offered = self._exported = self._in_flight = 0
        self._dropped: dict[str, int] = {}
        # FIFO positions: items ever queued / taken out / resolved (exported or dropped).
        self._enqueued = self._taken = self._resolved = 0
        self._flush_to = 0  # the worker exports without waiting while _taken is below this
        self._last_export = 0.0

    def offer(self, item: T) -> bool:
        """Queue ``item``; ``True`` if queued. Never raises, never blocks an application
        thread: a full queue drops the new item (counted ``queue_full``); inside
        :func:`blocking_offers` it waits for room instead."""
        try:
            with self._lock:
                self._offered += 1
                if self._enqueue(item):
                    return True
            return self._offer_full(item)
        except Exception as exc:  # noqa: BLE001 - a hot path: never hurt the application
            report_internal_error(f"batch.{self.signal}", exc)
        return False

    def _enqueue(self, item: T) -> bool:
        # Lock held. Queue item if there is room; whether it was queued.
        queue = self._queue
        if len(queue) >= self.max_queue_size or self._shutdown:
            return False
        queue.append(item)
        self._enqueued += 1
        if self._worker is None:
            self._start_worker()
        if len(queue) == self.max_export_batch_size:
            self._wake.notify()  # a full batch waits: no need to sit out the delay
        return True

    def _offer_full(self, item: T) -> bool:
        """``item``, offered (and counted) but not queued: inside :func:`blocking_offers`
        wait for room for it; else, or once the thread's ``should_stop()`` says so or the
        core shuts down, drop and count it. Whether it was queued in the end."""
        should_stop = getattr(_blocking, "should_stop", None)
        while True:
            stop = True
            if should_stop is not None:
                try:
                    stop = bool(should_stop())
                except Exception as exc:  # noqa: BLE001 - a broken predicate gives up waiting
                    report_internal_error(f"batch.{self.signal}", exc)
            with self._lock:
                if self._enqueue(item):
                    return True
                if not (stop or self._shutdown):
                    self._room.wait(_STOP_CHECK)
                    continue
                reason = "shutdown" if self._shutdown else "queue_full"
                self._count_drop(reason, 1)
            self._ledger(reason, [item])
            return False

    def count_unqueued(self, reason: str, n: int = 1) -> None:
        """Count ``n`` items that failed before they could be offered (a record the
        processor could not prepare) as offered and dropped, so that nothing is lost
        without a count. Never raises."""
        try:
            with self._lock:
                self._offered += n
                self._count_drop(reason, n)
            if self._drops is not None:
                self._drops.add(self.signal, reason, n)
        except Exception as exc:  # noqa: BLE001 - a hot path's error path
            report_internal_error(f"batch.{self.signal}", exc)

    def _count_drop(self, reason: str, n: int) -> None:
        # Lock held.
        self._dropped[reason] = self._dropped.get(reason, 0) + n

    def _ledger(self, reason: str, items: list[T]) -> None:
        # Lock not held: the ledger may report into a processor that offers to us, and
        # weight() is the caller's code.
        if self._drops is None or not items:
            return
        n = len(items)
        if self._weight is not None:
            try:
                n = sum(map(self._weight, items))
            except Exception as exc:  # noqa: BLE001 - still count the items themselves
                report_internal_error(f"batch.{self.signal}", exc)
        self._drops.add(self.signal, reason, n)

    def _start_worker(self) -> None:
        # Lock held; the worker's first wait starts the schedule delay.
        self._last_export = self._clock_now()
        thread = threading.Thread(target=self._run, name=f"otelkit-{self.name}", daemon=True)
        self._worker = thread
        try:
            with signals_blocked():  # see otelkit._threads
                thread.start()
        except RuntimeError as exc:  # no more threads: items stay queued, the next offer retries
            self._worker = None
            report_internal_error(f"batch.{self.signal}", exc)

    def _run(self) -> None:
        me = threading.current_thread()
        try:
            while True:
                with self._lock:
                    batch = self._next_batch(me)
                    if batch is None:
                        return
                ok = self._export_batch(batch)
                with self._lock:
                    self._in_flight = 0
                    self._resolved += len(batch)
                    if ok:
                        self._exported += len(batch)
                    else:
                        self._count_drop("export_failed", len(batch))
                    self._last_export = self._clock_now()
                    self._progress.notify_all()
                if not ok:
                    self._ledger("export_failed", batch)
        finally:
            with self._lock:
                if self._worker is me:
                    self._worker = None

    def _next_batch(self, me: threading.Thread) -> list[T] | None:
        # Lock held. Waits (bounded) until a batch is due; None tells the worker to stop.
        queue = self._queue
        while not (self._stop or self._worker is not me):
            if not queue:
                if self._shutdown:
                    return None
                self._wake.wait(min(self.schedule_delay, self._longest_wait))
                continue
            wait = self._last_export + self.schedule_delay - self._clock_now()
            urgent = self._shutdown or self._taken < self._flush_to
            if urgent or wait <= 0 or len(queue) >= self.max_export_batch_size:
                n = min(self.max_export_batch_size, len(queue))
                batch = [queue.popleft() for _ in range(n)]  # oldest first
                self._taken += n
                self._in_flight = n
                self._room.notify_all()
                return batch
            self._wake.wait(min(wait, self._longest_wait))
        return None

    def _export_batch(self, batch: list[T]) -> bool:
        try:
            with suppress_instrumentation():  # the exporter's own I/O must not be traced
                return bool(self._export(batch))
        except Exception as exc:  # noqa: BLE001 - counted as export_failed by the caller
            report_internal_error(f"batch.{self.signal}", exc)
            return False

    def _wait_resolved(self, target: int, deadline: float) -> bool:
        # Lock held.
        while self._resolved < target:
            remaining = deadline - _now()
            if remaining <= 0 or threading.current_thread() is self._worker:
                return False  # an exporter flushing its own processor would wait for itself
            self._progress.wait(min(remaining, _MAX_WAIT))
        return True

    def force_flush(self, timeout: float) -> bool:
        """Export everything queued at call time; ``True`` if all of it was exported or
        counted (``export_failed``) within ``timeout`` seconds."""
        deadline = _now() + max(0.0, timeout)
        with self._lock:
            target = self._enqueued
            self._flush_to = max(self._flush_to, target)
            if self._worker is None and self._queue and not self._stop:
                self._start_worker()
            self._wake.notify()
            return self._wait_resolved(target, deadline)

    def shutdown(self, timeout: float) -> bool:
        """Reject new items (counted ``shutdown``), export what is queued within ``timeout``
        seconds, count what is left as ``shutdown`` and stop the worker. ``True`` if the
        queue drained in time: nothing counted ``shutdown`` and no export still running
        (also ``True`` when already shut down)."""
        deadline = _now() + max(0.0, timeout)
        with self._lock:
            if self._shutdown:
                return True
            self._shutdown = True
            self._room.notify_all()  # blocked offers give up and count
            if self._worker is None and self._queue:
                self._start_worker()
            self._wake.notify()
            done = self._wait_resolved(self._enqueued, deadline)
            self._stop = True
            self._wake.notify()
            leftovers = list(self._queue)
            left = len(leftovers)
            self._queue.clear()
            self._taken += left
            self._resolved += left
            if left:
                self._count_drop("shutdown", left)
            worker = self._worker
        self._ledger("shutdown", leftovers)
        if worker is not None and worker is not threading.current_thread():
            worker.join(min(max(0.0, deadline - _now()), _MAX_WAIT))
        return done

    def stats(self) -> BatchStats:
        """A consistent snapshot of the conservation counters."""
        with self._lock:
            queued = len(self._queue) + self._in_flight
            return BatchStats(self._offered, self._exported, dict(self._dropped), queued)

    @property
    def queued(self) -> int:
        """Items offered and not yet resolved: waiting, or inside a running export."""
        return len(self._queue) + self._in_flight

    @property
    def exported(self) -> int:
        """Items the exporter accepted."""
        return self._exported

    @property
    def offered(self) -> int:
        """Every call of :meth:`offer` (queued or not)."""
        return self._offered

    @property
    def dropped(self) -> dict[str, int]:
        """Items counted as dropped, by reason."""
        with self._lock:
            return dict(self._dropped)


def _option(owner: str, option: str, value: float | None, var: str, default: float) -> float:
    integer = not option.endswith("_millis")
    if value is not None:
        _check(owner, option, value, integer=integer)
        return value
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        parsed: float = int(raw) if integer else float(raw)
        _check(owner, var, parsed, integer=integer)
    except ValueError:
        kind = "int" if integer else "number"
        raise ValueError(f"{owner}: {var} must be a positive {kind}, got {raw!r}") from None
    return parsed


def _core_options(
    owner: str,
    prefix: str,
    *,
    max_queue_size: int | None,
    schedule_delay_millis: float | None,
    max_export_batch_size: int | None,
    export_timeout_millis: float | None,
    delay_default: float,
) -> dict[str, Any]:
    """BatchCore's options: each the argument, else ``<prefix>_*`` from the environment,
    else the spec default. A batch size nobody chose is clipped to a smaller queue."""
    queue = int(_option(owner, "max_queue_size", max_queue_size, f"{prefix}_MAX_QUEUE_SIZE", 2048))
    batch_var = f"{prefix}_MAX_EXPORT_BATCH_SIZE"
    batch = int(_option(owner, "max_export_batch_size", max_export_batch_size, batch_var, 512))
    if max_export_batch_size is None and not os.environ.get(batch_var, "").strip():
        batch = min(batch, queue)
    if batch > queue:
        raise ValueError(
            f"{owner}: max_export_batch_size ({batch}) must be <= max_queue_size ({queue})"
        )
    delay_var, timeout_var = f"{prefix}_SCHEDULE_DELAY", f"{prefix}_EXPORT_TIMEOUT"
    delay = _option(owner, "schedule_delay_millis", schedule_delay_millis, delay_var, delay_default)
    timeout = _option(owner, "export_timeout_millis", export_timeout_millis, timeout_var, 30000)
    return {
        "max_queue_size": queue,
        "schedule_delay": delay / 1e3,
        "max_export_batch_size": batch,
        "export_timeout": timeout / 1e3,
        "name": owner,
    }


class _BatchingProcessor:
    """What the two processors share: flush and shut down the core, then the exporter."""

    core: BatchCore[Any]
    _exporter: SpanExporter | LogRecordExporter
    _closed = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued now, then flush the exporter, within ``timeout_millis``."""
        deadline = _now() + timeout_millis / 1e3
        done = self.core.force_flush(timeout_millis / 1e3)
        try:
            remaining = max(0, int((deadline - _now()) * 1e3))
            return self._exporter.force_flush(remaining) and done
        except Exception as exc:  # noqa: BLE001 - flushing must not raise into the caller
            report_internal_error(f"batch.{self.core.signal}", exc)
            return False

    def shutdown(self) -> None:
        """Export what is queued (bounded by the export timeout), then shut the exporter down."""
        if self._closed:
            return
        self._closed = True
        deadline = _now() + self.core.export_timeout
        self.core.shutdown(self.core.export_timeout)
        try:
            shutdown: Callable[..., object] = self._exporter.shutdown
            if "timeout_millis" in inspect.signature(shutdown).parameters:
                shutdown(timeout_millis=max(0.0, (deadline - _now()) * 1e3))
            else:
                shutdown()
        except Exception as exc:  # noqa: BLE001 - shutting down must not raise into the caller
            report_internal_error(f"batch.{self.core.signal}", exc)


class BatchSpanProcessor(_BatchingProcessor, SpanProcessor):
    """otelkit's batch span processor: the SDK's behaviour, with every drop counted.

    Options left ``None`` come from ``OTEL_BSP_*``, else the spec defaults (queue 2048,
    delay 5000 ms, batch 512, timeout 30000 ms). ``core`` holds the conservation counters.
    With ``encode``, the queue holds ``encode(span)`` for each span (made when it ends) and
    the exporter gets those items: an exporter's own compact form of a span (see
    ``otelkit.export.OtlpHttpSpanExporter.span_encoder``)."""

    core: BatchCore[Any]
    _exporter: SpanExporter

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        drops: DropLedger | None = None,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        encode: Callable[[ReadableSpan], Any] | None = None,
    ) -> None:
        options = _core_options(
            "BatchSpanProcessor",
            "OTEL_BSP",
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
            export_timeout_millis=export_timeout_millis,
            delay_default=5000,
        )
        self._exporter = exporter
        self._encode = encode
        self.core = BatchCore(self._export, signal="spans", drops=drops, **options)

    def _export(self, batch: list[Any]) -> bool:
        return self._exporter.export(batch) is SpanExportResult.SUCCESS

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do: spans are queued when they end."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue ``span`` (or ``encode(span)``) if it is sampled; never raises."""
        try:
            context = span.context
            if context is not None and context.trace_flags.sampled:
                encode = self._encode
                self.core.offer(span if encode is None else encode(span))
        except Exception as exc:  # noqa: BLE001 - a hot path: never hurt the application
            report_internal_error("batch.spans", exc)
            self.core.count_unqueued("processor_error")


class BatchLogRecordProcessor(_BatchingProcessor, LogRecordProcessor):
    """otelkit's batch log record processor: the SDK's behaviour, with every drop counted.

    Options left ``None`` come from ``OTEL_BLRP_*``, else the spec defaults (queue 2048,
    delay 1000 ms, batch 512, timeout 30000 ms). ``core`` holds the conservation counters.
    With ``encode``, the queue holds ``encode(record)`` for each record (made when it is
    emitted, in place of the copy) and the exporter gets those items: an exporter's own
    compact form of a record (see ``otelkit.export.OtlpHttpLogExporter.record_encoder``)."""

    core: BatchCore[Any]
    _exporter: LogRecordExporter

    def __init__(
        self,
        exporter: LogRecordExporter,
        *,
        drops: DropLedger | None = None,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        encode: Callable[[ReadWriteLogRecord], Any] | None = None,
    ) -> None:
        options = _core_options(
            "BatchLogRecordProcessor",
            "OTEL_BLRP",
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
            export_timeout_millis=export_timeout_millis,
            delay_default=1000,
        )
        self._exporter = exporter
        self._encode = encode or _queued
        self.core = BatchCore(self._export, signal="logs", drops=drops, **options)

    def _export(self, batch: list[Any]) -> bool:
        return self._exporter.export(batch) is LogRecordExportResult.SUCCESS

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue a context-free copy of ``log_record``, as the SDK's processor does (a
        relayed record as it is, see :func:`_queued`), or ``encode(log_record)``; never
        raises. A record that cannot be copied or encoded is counted as dropped
        (``processor_error``)."""
        try:
            item = self._encode(log_record)
        except Exception as exc:  # noqa: BLE001 - a hot path: never hurt the application
            report_internal_error("batch.logs", exc)
            self.core.count_unqueued("processor_error")
            return
        self.core.offer(item)


def _queued(record: ReadWriteLogRecord) -> ReadableLogRecord:
    """What the queue holds for ``record``: the SDK processor's context-free readable copy,
    or for a record the relay host built from a child's frame, a view of it without the
    copy (its context is the relay's own, with no caller's context to let go of, and
    nothing else keeps it)."""
    if type(record.log_record) is RelayedLogRecord:
        return readable_record(record)
    return readable_copy(record)
