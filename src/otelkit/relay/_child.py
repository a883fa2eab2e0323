"""The child side of the relay: buffer on the hot path, encode and send on one thread.

A :class:`ChildPipeline` owns an :class:`~otelkit.relay._outbox.Outbox` (two bounded
severity buffers, a short queue of encoded metric batches, the counts), one sender thread
and one :class:`~otelkit.relay._link.Link`. The hot path (``on_emit``, ``on_end``, a
logging call) only appends to a buffer. Only the sender thread encodes and writes: it wakes
every ``flush_interval`` seconds or when ``batch_size`` records wait. A flush (also the
exit-time one, also from a signal handler) only wakes the sender and polls its counters,
holding no lock the sender or an interrupted thread could need, so a signal never
deadlocks it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from otelkit._errors import report_internal_error
from otelkit._exit import call_at_exit, guard_os_exit
from otelkit._fork import after_fork_in_child
from otelkit._threads import start_daemon
from otelkit.relay._buffer import SeverityBuffer
from otelkit.relay._link import Link
from otelkit.relay._outbox import CHILD_NAME_ATTRIBUTE, Frame, LogItem, Outbox, Progress, describe
from otelkit.relay._processors import (
    RelayLoggingHandler,
    RelayLogRecordProcessor,
    RelaySpanProcessor,
)
from otelkit.relay._wire import RelayAddress

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LogRecordProcessor
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace import SpanProcessor

__all__ = ["CHILD_NAME_ATTRIBUTE", "ChildPipeline"]

_FALLBACK_MAX = 1000
_FLUSH_POLL = 0.005  # seconds between a flushing thread's looks at the sender's progress
# Seconds past the exit deadline that a shutdown waits for the sender to stop and report
# what it gave up (a file write, see Outbox.report_owed_drops): on an idle machine
# milliseconds; with far more runnable processes than cores the sender may wait that long
# for a turn, and without its report the records would be lost uncounted.
_FINAL_REPORT = 2.0


def _positive(name: str, value: Any, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise TypeError(f"ChildPipeline: {name} must be a {kind.__name__}, got {value!r}")
    if value <= 0:
        raise ValueError(f"ChildPipeline: {name} must be > 0, got {value!r}")


class ChildPipeline:
    """Exports a child process's log records, spans and metrics to its parent's relay.

    Use :attr:`span_processor` and :attr:`log_processor` in the child's providers (or
    :meth:`logging_handler` for the cheapest stdlib logging path), and
    :attr:`metric_exporter` in a ``PeriodicExportingMetricReader``. Nothing on those paths
    blocks: records wait in a buffer of ``max_buffer`` records per signal; when it is full
    the least severe, oldest record is dropped (an ERROR never goes while a DEBUG or INFO
    record is buffered), and every drop is counted and reported to the host.

    The pipeline shuts itself down (flushing, bounded by ``exit_timeout``) when the process
    ends, also through ``multiprocessing``'s ``os._exit``; ``exit_hooks=False`` leaves that
    to its owner (``otelkit.configure()`` collects the last metrics first, then flushes).
    """

    def __init__(
        self,
        address: RelayAddress,
        *,
        resource: Resource,
        stderr_fallback: bool = False,
        max_buffer: int = 16384,
        flush_interval: float = 0.2,
        batch_size: int = 512,
        exit_timeout: float = 3.0,
        child_name: str | None = None,
        exit_hooks: bool = True,
    ) -> None:
        if not isinstance(address, RelayAddress):
            raise TypeError("ChildPipeline: address must be a RelayAddress")
        if not isinstance(resource, Resource):
            raise TypeError(f"ChildPipeline: resource must be a Resource, got {resource!r}")
        _positive("max_buffer", max_buffer, int)
        _positive("batch_size", batch_size, int)
        _positive("flush_interval", flush_interval, float)
        _positive("exit_timeout", exit_timeout, float)
        if child_name is not None and not isinstance(child_name, str):
            raise TypeError(f"ChildPipeline: child_name must be a str, got {child_name!r}")
        self._stderr_fallback = bool(stderr_fallback)
        self._flush_interval = float(flush_interval)
        self._batch_size = batch_size
        self._exit_timeout = float(exit_timeout)
        self._outbox = Outbox(
            max_buffer=max_buffer, batch_size=batch_size, resource=resource, child_name=child_name
        )
        self._logs = self._outbox.logs  # the hot path's buffers
        self._spans = self._outbox.spans
        self._link = Link(address)
        self._relay_dir = os.path.dirname(address.path)
        self._reset_state()
        self.span_processor: SpanProcessor = RelaySpanProcessor(self)
        """An SDK ``SpanProcessor`` for the child's ``TracerProvider``."""
        self.log_processor: LogRecordProcessor = RelayLogRecordProcessor(self)
        """An SDK ``LogRecordProcessor`` for the child's ``LoggerProvider``."""
        from otelkit.relay._metric_exporter import RelayMetricExporter

        self.metric_exporter: MetricExporter = RelayMetricExporter(self)
        """An SDK ``MetricExporter`` (for a ``PeriodicExportingMetricReader``) whose batches
        travel to the host, which exports them under this child's resource."""
        after_fork_in_child(self, ChildPipeline._after_fork_in_child)
        if exit_hooks:
            call_at_exit(self, ChildPipeline._at_exit, priority=100)
            guard_os_exit()

    @classmethod
    def from_env(cls, value: str, *, resource: Resource, **options: Any) -> ChildPipeline:
        """A pipeline to the relay named by an ``OTELKIT_RELAY`` value (see ``RELAY_ENV``).

        Keyword options: ``stderr_fallback``, ``max_buffer``, ``flush_interval``,
        ``batch_size``, ``exit_timeout``, ``child_name``, ``exit_hooks`` (see the class).
        """
        return cls(RelayAddress.parse(value), resource=resource, **options)

    def _reset_state(self) -> None:
        self._wake = threading.Event()
        self._woken = False
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._closed = False
        self._shutting_down = False
        self._shut_down = threading.Event()
        self._exit_deadline: float | None = None
        self._give_up = False
        self._drain_until = 0.0  # a flush is waiting: retry the link until then
        self._pending: Frame | None = None  # the sender's frame being written
        self._fallback: deque[object] = deque(maxlen=_FALLBACK_MAX)

    # ---- hot path -------------------------------------------------------------------
    def _offer_log(self, item: LogItem, cls: int) -> None:
        """Buffer a log record of severity class ``cls`` (never blocks)."""
        self._offer(self._logs, item, cls)

    def _offer_span(self, span: ReadableSpan, cls: int) -> None:
        """Buffer an ended span of severity class ``cls`` (never blocks)."""
        self._offer(self._spans, span, cls)

    def _offer(self, buffer: SeverityBuffer[Any], item: object, cls: int) -> None:
        if self._closed:
            self._count_after_close(buffer)
            return
        victim = buffer.append(item, cls)
        if victim is not None or buffer.size >= self._batch_size or self._thread is None:
            self._after_append(buffer, victim)

    def _after_append(self, buffer: SeverityBuffer[Any], victim: object) -> None:
        """The rare part of an offer: keep the victim for stderr, wake or start the sender."""
        if victim is not None and self._stderr_fallback:
            self._fallback.append(victim)
        if buffer.size >= self._batch_size and not self._woken:
            self._woken = True  # a stale flag costs one wake-up at most: the timer covers it
            self._wake.set()
        if self._thread is None:
            self._start_thread()

    def _offer_metrics(self, payload: bytes, points: int) -> None:
        """Queue one encoded ``ExportMetricsServiceRequest`` holding ``points`` data points.

        At most a few dozen collections wait; past that the oldest is given up and its
        points are counted as dropped (a cumulative series loses nothing by it).
        """
        outbox = self._outbox
        with outbox.lock:
            if self._closed:
                outbox.lost[2] += points
                return
            outbox.add_metrics(payload, points)
        self._wake.set()
        if self._thread is None:
            self._start_thread()

    def _count_after_close(self, buffer: SeverityBuffer[Any]) -> None:
        """A record offered after shutdown: it can no longer be sent, so it is counted as
        dropped (in :attr:`dropped`; the host has been told all it will hear)."""
        self._outbox.lost[0 if buffer is self._logs else 1] += 1

    def _count_dropped_metric_points(self, points: int) -> None:
        """Count ``points`` that never reached the queue (a collection that failed to encode);
        they are reported to the host with the other drops."""
        with self._outbox.lock:
            self._outbox.lost[2] += points

    # ---- public ---------------------------------------------------------------------
    def logging_handler(self, *, level: int = 0) -> logging.Handler:
        """A stdlib ``logging.Handler`` that feeds this pipeline without SDK objects."""
        return RelayLoggingHandler(self, level=level)

    @property
    def dropped(self) -> tuple[int, int]:
        """``(log records, spans)`` dropped so far (buffer overflow, unencodable values,
        given up at exit)."""
        counts = self._outbox.drop_counts()
        return counts[0], counts[1]

    @property
    def dropped_metric_points(self) -> int:
        """Metric data points dropped so far (collections pushed out while the host was slow)."""
        return self._outbox.lost[2]

    @property
    def connected(self) -> bool:
        """Whether the link to the host is up right now."""
        return self._link.connected

    @property
    def resource(self) -> Resource:
        """The resource the host exports this child's telemetry under: the given resource
        plus ``process.pid``, ``service.instance.id`` and ``otelkit.relay.child``."""
        return self._outbox.identity()[0]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write everything buffered now to the host; ``False`` if not done in the timeout.

        The sender thread does the writing; the caller only waits (polling, holding no lock),
        so this is safe from a signal handler. Records then sit in the socket, which the host
        reads even after this process has exited.
        """
        try:
            deadline = time.monotonic() + max(0, timeout_millis) / 1000.0
            target = self._outbox.progress()
            if self._is_flushed(target):
                return True
            if self._shut_down.is_set():
                return False  # closed: nothing more will be written
            self._drain_until = max(self._drain_until, deadline)
            if self._thread is None:
                self._start_thread()
            self._wake.set()
            while time.monotonic() < deadline:
                if self._is_flushed(target):
                    return True
                time.sleep(_FLUSH_POLL)
            return self._is_flushed(target)
        except Exception as exc:  # noqa: BLE001 - flushing must not raise into the caller
            report_internal_error("relay.child", exc)
            return False

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush (bounded by ``timeout`` seconds, default ``exit_timeout``) and stop; later
        records are ignored.

        What could not be written in time is counted as dropped and reported to the host
        in a file of the relay's directory (see :mod:`otelkit.relay._dropfile`); waiting
        for the sender to do that takes milliseconds more (at most ``_FINAL_REPORT``).
        """
        seconds = self._exit_timeout if timeout is None else max(0.0, min(timeout, 3600.0))
        with self._outbox.lock:
            started, self._shutting_down = self._shutting_down, True
        if started:  # another thread is shutting down: the process must not end before it
            self._shut_down.wait(seconds + _FINAL_REPORT)
            return
        try:
            self._shutdown(seconds)
        finally:
            self._shut_down.set()

    def _shutdown(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        self._exit_deadline = deadline
        done = self.force_flush(int(max(0.0, deadline - time.monotonic()) * 1000))
        # _give_up before _closed: a sender that sees _closed past the deadline exits
        # unless it still has to give up (count and report what is left).
        if done:
            self._exit_deadline = time.monotonic()  # the sender stops at its next look
        else:
            self._give_up = True  # the sender counts what is left and reports it
        with self._outbox.lock:
            self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()) + _FINAL_REPORT)
        if self._give_up and (thread is None or not thread.is_alive()):
            self._give_up_now()  # the sender ended first (or never ran): the buffers are ours

    def _give_up_now(self) -> None:
        """Exit ran out of time: count what is left as dropped and report it (on the one
        thread that touches the buffers)."""
        self._give_up = False
        pending, self._pending = self._pending, None
        self._outbox.give_up(pending)
        self._outbox.report_owed_drops(self._relay_dir)

    def _is_flushed(self, target: Progress) -> bool:
        """Whether everything offered at ``target`` is sent or counted as dropped, with no
        frame half written."""
        return self._pending is None and self._outbox.reached(target)

    # ---- sender -----------------------------------------------------------------------
    def _start_thread(self) -> None:
        with self._thread_lock:
            if self._thread is not None:
                return
            self._thread = start_daemon(self._run, name="otelkit-relay-child")

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._woken = False
            try:
                if self._give_up:
                    self._give_up_now()
                    break
                self._pump()
            except Exception as exc:  # noqa: BLE001 - the sender must survive anything
                report_internal_error("relay.child", exc)
            if self._closed and self._past_exit_deadline() and not self._give_up:
                break
        self._link.close()

    def _past_exit_deadline(self) -> bool:
        deadline = self._exit_deadline
        return deadline is not None and time.monotonic() >= deadline

    def _pump(self) -> None:
        """Send frames until the buffers are empty, the link is down with no flush waiting,
        or the exit deadline passed."""
        self._write_fallback()
        while True:
            frame = self._pending or self._outbox.next_frame()
            if frame is None:
                return
            self._pending = frame
            if self._past_exit_deadline():
                return
            if not self._link.ensure_connected():
                if time.monotonic() >= self._drain_until:
                    return
                time.sleep(0.02)  # a flush waits: retry within its deadline
                continue
            if not self._link.send(frame.data, abort=self._past_exit_deadline):
                continue
            self._pending = None
            self._outbox.written(frame)

    def _write_fallback(self) -> None:
        while self._fallback:
            item = self._fallback.popleft()
            try:
                sys.stderr.write(f"[otelkit relay: dropped] {describe(item)}\n")
            except Exception:  # noqa: BLE001 - stderr is gone: nothing left to tell
                return

    # ---- process lifecycle --------------------------------------------------------------
    def _after_fork_in_child(self) -> None:
        self._outbox.reset()
        self._outbox.forget_identity()
        self._link.reset_after_fork()
        closed = self._closed
        self._reset_state()
        self._closed = self._shutting_down = closed
        if closed:
            self._shut_down.set()

    def _at_exit(self) -> None:
        try:
            self.shutdown()
        except Exception as exc:  # noqa: BLE001 - exit must go on
            report_internal_error("relay.child", exc)
