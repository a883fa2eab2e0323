"""The child side of the relay: buffer on the hot path, encode and send on one thread.

A :class:`ChildPipeline` owns two bounded :class:`~otelkit.relay._buffer.SeverityBuffer`
(log records, spans), a short queue of encoded metric batches, one sender thread and one
:class:`~otelkit.relay._link.Link`. The hot path (``on_emit``, ``on_end``, a logging call)
only appends to a buffer. Only the sender thread encodes and writes: it wakes every
``flush_interval`` seconds or when ``batch_size`` records wait. A flush (also the exit-time
one, also from a signal handler) only wakes the sender and polls its counters, holding no
lock the sender or an interrupted thread could need, so a signal never deadlocks it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections import deque
from typing import Any, NamedTuple

from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from otelkit._errors import report_internal_error
from otelkit._exit import call_at_exit
from otelkit._fork import after_fork_in_child
from otelkit._threads import start_daemon
from otelkit.relay._buffer import SeverityBuffer
from otelkit.relay._dropfile import write_drop_file
from otelkit.relay._encode import (
    LogEntry,
    encode_log_request,
    encode_resource,
    encode_span_request,
    entry_from_sdk,
    warm_up,
)
from otelkit.relay._link import Link
from otelkit.relay._processors import (
    RelayLoggingHandler,
    RelayLogRecordProcessor,
    RelaySpanProcessor,
)
from otelkit.relay._wire import (
    FRAME_LOGS,
    FRAME_METRICS,
    FRAME_SPANS,
    RelayAddress,
    encode_drops,
    encode_frame,
)

__all__ = ["CHILD_NAME_ATTRIBUTE", "ChildPipeline"]

CHILD_NAME_ATTRIBUTE = "otelkit.relay.child"
_FALLBACK_MAX = 1000
_MAX_METRIC_BATCHES = 32  # collections waiting to be sent; a slow host costs the oldest
_FLUSH_POLL = 0.005  # seconds between a flushing thread's looks at the sender's progress
# Seconds past the exit deadline that a shutdown waits for the sender to stop and report
# what it gave up (a file write, see _report_unsent_drops): on an idle machine
# milliseconds; on one with far more runnable processes than cores the sender may wait
# that long for a turn, and without its report the records would be lost uncounted.
_FINAL_REPORT = 2.0

LogItem = LogEntry | ReadWriteLogRecord


class _Frame(NamedTuple):
    data: bytes
    logs: int
    spans: int
    points: int
    drops: tuple[int, ...] = ()  # a drop report's counts (already counted as reported)


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
        self._resource = resource
        self._stderr_fallback = bool(stderr_fallback)
        self._flush_interval = float(flush_interval)
        self._batch_size = batch_size
        self._exit_timeout = float(exit_timeout)
        self._child_name = child_name
        self._forked = False
        self._logs: SeverityBuffer[LogItem] = SeverityBuffer(max_buffer)
        self._spans: SeverityBuffer[ReadableSpan] = SeverityBuffer(max_buffer)
        self._link = Link(address)
        self._relay_dir = os.path.dirname(address.path)
        self._reset_state()
        self.span_processor = RelaySpanProcessor(self)
        """An SDK ``SpanProcessor`` for the child's ``TracerProvider``."""
        self.log_processor = RelayLogRecordProcessor(self)
        """An SDK ``LogRecordProcessor`` for the child's ``LoggerProvider``."""
        from otelkit.relay._metric_exporter import RelayMetricExporter

        self.metric_exporter = RelayMetricExporter(self)
        """An SDK ``MetricExporter`` (for a ``PeriodicExportingMetricReader``) whose batches
        travel to the host, which exports them under this child's resource."""
        after_fork_in_child(self, ChildPipeline._after_fork_in_child)
        if exit_hooks:
            call_at_exit(self, ChildPipeline._at_exit, priority=100)

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
        self._metric_lock = threading.Lock()
        self._closed = False
        self._shutting_down = False
        self._shut_down = threading.Event()
        self._exit_deadline: float | None = None
        self._give_up = False
        self._drain_until = 0.0  # a flush is waiting: retry the link until then
        self._pending: _Frame | None = None
        self._metric_batches: deque[tuple[bytes, int]] = deque()
        self._metric_batches_queued = 0
        self._reported = [0, 0, 0]  # drops already reported (logs, spans, metric points)
        self._unencodable = [0, 0]  # records whose values could not be encoded
        self._lost = [0, 0, 0]  # given up at exit or pushed out of the metric queue
        self._spans_first = False
        self._fallback: deque[object] = deque(maxlen=_FALLBACK_MAX)
        self._identity_cache: tuple[Resource, bytes] | None = None
        self.sent_logs = 0
        """Log records written to the socket (for tests and diagnostics)."""
        self.sent_spans = 0
        """Spans written to the socket (for tests and diagnostics)."""
        self.sent_metric_points = 0
        """Metric data points written to the socket (for tests and diagnostics)."""
        self._metric_batches_sent = 0

    # ---- hot path -------------------------------------------------------------------
    def offer_log(self, item: LogItem, cls: int) -> None:
        """Buffer a log record of severity class ``cls`` (never blocks)."""
        self._offer(self._logs, item, cls)

    def offer_span(self, span: ReadableSpan, cls: int) -> None:
        """Buffer an ended span of severity class ``cls`` (never blocks)."""
        self._offer(self._spans, span, cls)

    def _offer(self, buffer: SeverityBuffer[Any], item: object, cls: int) -> None:
        if self._closed:
            self.count_after_close(buffer)
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

    def offer_metrics(self, payload: bytes, points: int) -> None:
        """Queue one encoded ``ExportMetricsServiceRequest`` holding ``points`` data points.

        At most a few dozen collections wait; past that the oldest is given up and its
        points are counted as dropped (a cumulative series loses nothing by it).
        """
        with self._metric_lock:
            if self._closed:
                self._lost[2] += points
                return
            self._metric_batches.append((encode_frame(FRAME_METRICS, payload), points))
            self._metric_batches_queued += 1
            if len(self._metric_batches) > _MAX_METRIC_BATCHES:
                _, lost = self._metric_batches.popleft()
                self._lost[2] += lost
                self._metric_batches_sent += 1  # accounted for, as dropped
        self._wake.set()
        if self._thread is None:
            self._start_thread()

    def count_after_close(self, buffer: SeverityBuffer[Any]) -> None:
        """A record offered after shutdown: it can no longer be sent, so it is counted as
        dropped (in :attr:`dropped`; the host has been told all it will hear)."""
        self._lost[0 if buffer is self._logs else 1] += 1

    def count_dropped_metric_points(self, points: int) -> None:
        """Count ``points`` that never reached the queue (a collection that failed to encode);
        they are reported to the host with the other drops."""
        with self._metric_lock:
            self._lost[2] += points

    # ---- public ---------------------------------------------------------------------
    def logging_handler(self, *, level: int = 0) -> RelayLoggingHandler:
        """A stdlib ``logging.Handler`` that feeds this pipeline without SDK objects."""
        return RelayLoggingHandler(self, level=level)

    @property
    def dropped(self) -> tuple[int, int]:
        """``(log records, spans)`` dropped so far (buffer overflow, unencodable values,
        given up at exit)."""
        counts = self._drop_counts()
        return counts[0], counts[1]

    @property
    def dropped_metric_points(self) -> int:
        """Metric data points dropped so far (collections pushed out while the host was slow)."""
        return self._lost[2]

    @property
    def connected(self) -> bool:
        """Whether the link to the host is up right now."""
        return self._link.connected

    @property
    def resource(self) -> Resource:
        """The resource the host exports this child's telemetry under: the given resource
        plus ``process.pid``, ``service.instance.id`` and ``otelkit.relay.child``."""
        return self._identity()[0]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write everything buffered now to the host; ``False`` if not done in the timeout.

        The sender thread does the writing; the caller only waits (polling, holding no lock),
        so this is safe from a signal handler. Records then sit in the socket, which the host
        reads even after this process has exited.
        """
        try:
            deadline = time.monotonic() + max(0, timeout_millis) / 1000.0
            target = self._progress_target()
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
        with self._metric_lock:
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
        with self._metric_lock:
            self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()) + _FINAL_REPORT)
            if self._give_up and not thread.is_alive():
                self._give_up_here()

    def _give_up_here(self) -> None:
        """The sender ended before it gave up (or never ran): count and report here, the
        only thread left that touches the buffers."""
        self._give_up = False
        self._give_up_buffered()
        self._report_unsent_drops()

    # ---- progress -----------------------------------------------------------------------
    def _drop_counts(self) -> list[int]:
        return [
            self._logs.evicted + self._unencodable[0] + self._lost[0],
            self._spans.evicted + self._unencodable[1] + self._lost[1],
            self._lost[2],
        ]

    def _progress_target(self) -> tuple[int, int, int, list[int]]:
        return (
            self._logs.appended,
            self._spans.appended,
            self._metric_batches_queued,
            self._drop_counts(),
        )

    def _is_flushed(self, target: tuple[int, int, int, list[int]]) -> bool:
        """Whether as many records as were offered at ``target`` have been sent or counted
        as dropped, every metric batch queued then is out, and the drops are reported."""
        logs, spans, batches, drops = target
        return (
            self._pending is None
            and self.sent_logs + self._logs.evicted + self._unencodable[0] + self._lost[0] >= logs
            and self.sent_spans + self._spans.evicted + self._unencodable[1] + self._lost[1]
            >= spans
            and self._metric_batches_sent >= batches
            and all(done >= want for done, want in zip(self._reported, drops, strict=True))
        )

    def _give_up_buffered(self) -> None:
        """Exit ran out of time: count what is still buffered (or half sent) as dropped.
        Runs on the sender thread, which owns the pending frame."""
        self._lost[0] += len(self._logs.take(sys.maxsize))
        self._lost[1] += len(self._spans.take(sys.maxsize))
        pending, self._pending = self._pending, None
        if pending is not None:
            self._unreport(pending)
            self._lost[0] += pending.logs
            self._lost[1] += pending.spans
            self._lost[2] += pending.points
            if pending.data[4] == FRAME_METRICS:
                self._metric_batches_sent += 1
        with self._metric_lock:
            while self._metric_batches:
                self._lost[2] += self._metric_batches.popleft()[1]
                self._metric_batches_sent += 1

    def _unreport(self, frame: _Frame) -> None:
        """A drop report that never went out whole: its counts are owed again."""
        if frame.drops:
            self._reported = [r - d for r, d in zip(self._reported, frame.drops, strict=True)]

    def _report_unsent_drops(self) -> None:
        """At exit, after giving up: what is still unreported goes into a file of the relay
        directory, which the host reads without the link. Not a frame: the host was not
        reading in time (back-pressure), and a file write does not wait for it."""
        owed = [
            now - before for now, before in zip(self._drop_counts(), self._reported, strict=True)
        ]
        if not any(owed):
            return
        if write_drop_file(self._relay_dir, *owed):
            self._reported = self._drop_counts()
            return
        print(
            f"otelkit relay: {owed[0]} log records, {owed[1]} spans and {owed[2]} metric points "
            "were lost at exit and could not be reported to the relay host",
            file=sys.stderr,
        )

    # ---- sender -----------------------------------------------------------------------
    def _start_thread(self) -> None:
        with self._thread_lock:
            if self._thread is not None:
                return
            self._thread = start_daemon(self._run, name="otelkit-relay-child")

    def _run(self) -> None:
        warm_up()  # the encoders' imports happen here, never on a flushing thread
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._woken = False
            try:
                if self._give_up:
                    self._give_up = False  # done here, not again by _shutdown
                    self._give_up_buffered()
                    self._report_unsent_drops()
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
            frame = self._pending or self._next_frame()
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
            self.sent_logs += frame.logs
            self.sent_spans += frame.spans
            self.sent_metric_points += frame.points
            if frame.data[4] == FRAME_METRICS:
                self._metric_batches_sent += 1

    def _next_frame(self) -> _Frame | None:
        counts = self._drop_counts()
        news = [now - before for now, before in zip(counts, self._reported, strict=True)]
        if any(news):
            self._reported = counts
            return _Frame(encode_drops(*news), 0, 0, 0, tuple(news))
        with self._metric_lock:
            batch = self._metric_batches.popleft() if self._metric_batches else None
        if batch is not None:
            return _Frame(batch[0], 0, 0, batch[1])
        # Alternate between the signals so that a flood of one never starves the other.
        self._spans_first = not self._spans_first
        order = (self._span_frame, self._log_frame)
        for make in order if self._spans_first else reversed(order):
            frame = make()
            if frame is not None:
                return frame
        return None

    def _log_frame(self) -> _Frame | None:
        items = self._logs.take(self._batch_size)
        if not items:
            return None
        entries = [i if type(i) is tuple else entry_from_sdk(i) for i in items]  # type: ignore[arg-type]
        payload, n = self._encode(encode_log_request, entries, 0)
        return _Frame(encode_frame(FRAME_LOGS, payload), n, 0, 0)

    def _span_frame(self) -> _Frame | None:
        spans = self._spans.take(self._batch_size)
        if not spans:
            return None
        payload, n = self._encode(encode_span_request, spans, 1)
        return _Frame(encode_frame(FRAME_SPANS, payload), 0, n, 0)

    def _encode(self, encode: Any, items: list[Any], signal: int) -> tuple[bytes, int]:
        """Encode a batch; on failure, item by item, counting the unencodable as dropped."""
        resource = self._identity()[1]
        try:
            return encode(resource, items), len(items)
        except Exception as exc:  # noqa: BLE001 - one odd value must not cost the batch
            report_internal_error("relay.child", exc)
        good = []
        for item in items:
            try:
                encode(resource, [item])
                good.append(item)
            except Exception:  # noqa: BLE001 - counted below and reported to the host
                self._unencodable[signal] += 1
        return encode(resource, good), len(good)

    def _identity(self) -> tuple[Resource, bytes]:
        """The child's resource (given resource + pid, instance id, child name) and its
        protobuf encoding."""
        if self._identity_cache is None:
            attributes = dict(self._resource.attributes)
            attributes["process.pid"] = os.getpid()
            if self._forked or "service.instance.id" not in attributes:
                attributes["service.instance.id"] = str(uuid.uuid4())
            attributes[CHILD_NAME_ATTRIBUTE] = self._child_name or _default_child_name()
            resource = Resource(attributes, self._resource.schema_url)
            self._identity_cache = (resource, encode_resource(resource))
        return self._identity_cache

    def _write_fallback(self) -> None:
        while self._fallback:
            item = self._fallback.popleft()
            try:
                sys.stderr.write(f"[otelkit relay: dropped] {_describe(item)}\n")
            except Exception:  # noqa: BLE001 - stderr is gone: nothing left to tell
                return

    # ---- process lifecycle --------------------------------------------------------------
    def _after_fork_in_child(self) -> None:
        self._logs.reset_after_fork()
        self._spans.reset_after_fork()
        self._link.reset_after_fork()
        closed = self._closed
        self._reset_state()
        self._closed = self._shutting_down = closed
        if closed:
            self._shut_down.set()
        self._forked = True

    def _at_exit(self) -> None:
        try:
            self.shutdown()
        except Exception as exc:  # noqa: BLE001 - exit must go on
            report_internal_error("relay.child", exc)


def _default_child_name() -> str:
    mp = sys.modules.get("multiprocessing")
    if mp is not None:
        name = mp.current_process().name
        if name != "MainProcess":
            return str(name)
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    return os.path.basename(argv0) or "python"


def _describe(item: object) -> str:
    if isinstance(item, ReadableSpan):
        return f"span {item.name!r}"
    if isinstance(item, ReadWriteLogRecord):
        lr = item.log_record
        return f"{lr.severity_text or ''} {lr.body!r}"
    if isinstance(item, tuple):
        return f"{item[3] or ''} {item[9]}: {item[4]!r}"
    return repr(item)
