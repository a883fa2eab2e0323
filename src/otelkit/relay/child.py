"""The child side of the relay: buffer on the hot path, encode and send on a thread.

A :class:`ChildPipeline` owns two bounded :class:`~otelkit.relay._buffer.SeverityBuffer`
(log records, spans), one sender thread and one :class:`~otelkit.relay._link.Link`. The
hot path (``on_emit``, ``on_end``, a logging call) only appends to a buffer. The sender
wakes every ``flush_interval`` seconds or when ``batch_size`` records wait, encodes OTLP
batches and writes frames; drops are reported to the host in the next frame.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from typing import Any

from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from otelkit._errors import report_internal_error
from otelkit.relay._buffer import SeverityBuffer
from otelkit.relay._encode import (
    LogEntry,
    encode_log_request,
    encode_resource,
    encode_span_request,
    entry_from_sdk,
)
from otelkit.relay._link import Link
from otelkit.relay._processors import (
    RelayLoggingHandler,
    RelayLogRecordProcessor,
    RelaySpanProcessor,
)
from otelkit.relay._wire import FRAME_LOGS, FRAME_SPANS, RelayAddress, encode_drops, encode_frame

__all__ = ["CHILD_NAME_ATTRIBUTE", "ChildPipeline"]

CHILD_NAME_ATTRIBUTE = "otelkit.relay.child"
_FALLBACK_MAX = 1000

LogItem = LogEntry | ReadWriteLogRecord


def _positive(name: str, value: Any, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise TypeError(f"ChildPipeline: {name} must be a {kind.__name__}, got {value!r}")
    if value <= 0:
        raise ValueError(f"ChildPipeline: {name} must be > 0, got {value!r}")


class ChildPipeline:
    """Exports a child process's log records and spans to its parent's relay.

    Use :attr:`span_processor` and :attr:`log_processor` in the child's providers (or
    :meth:`logging_handler` for the cheapest stdlib logging path). Nothing on those paths
    blocks: records wait in a buffer of ``max_buffer`` records per signal; when it is full
    the least severe, oldest record is dropped (an ERROR never goes while a DEBUG or INFO
    record is buffered), and every drop is counted and reported to the host.
    """

    def __init__(
        self,
        address: RelayAddress,
        *,
        resource: Resource,
        stderr_fallback: bool = False,
        max_buffer: int = 8192,
        flush_interval: float = 0.2,
        batch_size: int = 512,
        exit_timeout: float = 3.0,
        child_name: str | None = None,
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
        self._reset_state()
        self.span_processor = RelaySpanProcessor(self)
        """An SDK ``SpanProcessor`` for the child's ``TracerProvider``."""
        self.log_processor = RelayLogRecordProcessor(self)
        """An SDK ``LogRecordProcessor`` for the child's ``LoggerProvider``."""
        _register_exit_hooks(self)

    @classmethod
    def from_env(cls, value: str, *, resource: Resource, **options: Any) -> ChildPipeline:
        """A pipeline to the relay named by an ``OTELKIT_RELAY`` value (see ``RELAY_ENV``).

        Keyword options: ``stderr_fallback``, ``max_buffer``, ``flush_interval``,
        ``batch_size``, ``exit_timeout``, ``child_name`` (see the class).
        """
        return cls(RelayAddress.parse(value), resource=resource, **options)

    def _reset_state(self) -> None:
        self._io_lock = threading.Lock()
        self._wake = threading.Event()
        self._woken = False
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._closed = False
        self._exit_deadline: float | None = None
        self._pending: tuple[bytes, int, int] | None = None  # frame, logs, spans in it
        self._reported = [0, 0]  # drops already reported (logs, spans)
        self._unencodable = [0, 0]  # records whose values could not be encoded
        self._spans_first = False
        self._fallback: deque[object] = deque(maxlen=_FALLBACK_MAX)
        self._resource_bytes: bytes | None = None
        self.sent_logs = 0
        """Log records written to the socket (for tests and diagnostics)."""
        self.sent_spans = 0
        """Spans written to the socket (for tests and diagnostics)."""

    # ---- hot path -------------------------------------------------------------------
    def _offer_log(self, item: LogItem, cls: int) -> None:
        self._offer(self._logs, item, cls)

    def _offer_span(self, span: ReadableSpan, cls: int) -> None:
        self._offer(self._spans, span, cls)

    def _offer(self, buffer: SeverityBuffer[Any], item: object, cls: int) -> None:
        if self._closed:
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

    # ---- public ---------------------------------------------------------------------
    def logging_handler(self, *, level: int = 0) -> RelayLoggingHandler:
        """A stdlib ``logging.Handler`` that feeds this pipeline without SDK objects."""
        return RelayLoggingHandler(self, level=level)

    @property
    def dropped(self) -> tuple[int, int]:
        """``(log records, spans)`` dropped so far (buffer overflow, unencodable values)."""
        return (
            self._logs.evicted + self._unencodable[0],
            self._spans.evicted + self._unencodable[1],
        )

    @property
    def connected(self) -> bool:
        """Whether the link to the host is up right now."""
        return self._link.connected

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write everything buffered to the host; ``False`` if not done within the timeout.

        Blocks the caller (up to the timeout); records then sit in the socket, which the
        host reads even after this process has exited.
        """
        deadline = time.monotonic() + max(0, timeout_millis) / 1000.0
        if not self._io_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return False
        try:
            return self._pump(abort=lambda: time.monotonic() >= deadline, drain=True)
        except Exception as exc:  # noqa: BLE001 - flushing must not raise into the caller
            report_internal_error("relay.child", exc)
            return False
        finally:
            self._io_lock.release()

    def shutdown(self) -> None:
        """Flush (bounded by ``exit_timeout``) and stop; later records are ignored."""
        if self._closed:
            return
        self._exit_deadline = time.monotonic() + self._exit_timeout
        self.force_flush(int(self._exit_timeout * 1000))
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, self._exit_deadline - time.monotonic()) + 0.5)
        if self._io_lock.acquire(timeout=0.5):
            try:
                self._link.close()
            finally:
                self._io_lock.release()

    # ---- sender -----------------------------------------------------------------------
    def _start_thread(self) -> None:
        with self._thread_lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name="otelkit-relay-child", daemon=True)
            self._thread = thread
            thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._woken = False
            if self._closed:
                break
            try:
                with self._io_lock:
                    self._pump(abort=self._should_abort, drain=False)
            except Exception as exc:  # noqa: BLE001 - the sender must survive anything
                report_internal_error("relay.child", exc)

    def _should_abort(self) -> bool:
        deadline = self._exit_deadline
        return deadline is not None and time.monotonic() >= deadline

    def _pump(self, *, abort: Any, drain: bool) -> bool:
        """Send frames until the buffers are empty; ``True`` if all was sent."""
        self._write_fallback()
        while True:
            frame = self._pending or self._next_frame()
            if frame is None:
                return True
            self._pending = frame
            if not self._link.ensure_connected():
                if not drain or abort():
                    return False
                time.sleep(0.02)  # flushing: wait out the backoff, bounded by abort()
                continue
            if not self._link.send(frame[0], abort=abort):
                if abort():
                    return False
                continue
            self._pending = None
            self.sent_logs += frame[1]
            self.sent_spans += frame[2]

    def _next_frame(self) -> tuple[bytes, int, int] | None:
        logs_dropped = self._logs.evicted + self._unencodable[0] - self._reported[0]
        spans_dropped = self._spans.evicted + self._unencodable[1] - self._reported[1]
        if logs_dropped or spans_dropped:
            self._reported = [self._reported[0] + logs_dropped, self._reported[1] + spans_dropped]
            return encode_drops(logs_dropped, spans_dropped), 0, 0
        # Alternate between the signals so that a flood of one never starves the other.
        self._spans_first = not self._spans_first
        order = (self._span_frame, self._log_frame)
        for make in order if self._spans_first else reversed(order):
            frame = make()
            if frame is not None:
                return frame
        return None

    def _log_frame(self) -> tuple[bytes, int, int] | None:
        items = self._logs.take(self._batch_size)
        if not items:
            return None
        entries = [i if type(i) is tuple else entry_from_sdk(i) for i in items]  # type: ignore[arg-type]
        payload, n = self._encode(encode_log_request, entries, 0)
        return encode_frame(FRAME_LOGS, payload), n, 0

    def _span_frame(self) -> tuple[bytes, int, int] | None:
        spans = self._spans.take(self._batch_size)
        if not spans:
            return None
        payload, n = self._encode(encode_span_request, spans, 1)
        return encode_frame(FRAME_SPANS, payload), 0, n

    def _encode(self, encode: Any, items: list[Any], signal: int) -> tuple[bytes, int]:
        """Encode a batch; on failure, item by item, counting the unencodable as dropped."""
        resource = self._identity()
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

    def _identity(self) -> bytes:
        """The child's resource as protobuf: given resource + pid, instance id, child name."""
        if self._resource_bytes is None:
            attributes = dict(self._resource.attributes)
            attributes["process.pid"] = os.getpid()
            if self._forked or "service.instance.id" not in attributes:
                attributes["service.instance.id"] = str(uuid.uuid4())
            attributes[CHILD_NAME_ATTRIBUTE] = self._child_name or _default_child_name()
            self._resource_bytes = encode_resource(Resource(attributes))
        return self._resource_bytes

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
        self._closed = closed
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


def _register_exit_hooks(pipeline: ChildPipeline) -> None:
    """Flush at exit, also when a multiprocessing child leaves through ``os._exit``.

    Fork and forkserver children of ``multiprocessing`` end with ``os._exit()`` right after
    running ``multiprocessing.util``'s finalizers, and clear that registry first thing after
    the fork; so the finalizer is registered through ``register_after_fork`` in each forked
    child. ``multiprocessing`` is never imported for this: a process that forks through it
    has already imported it.
    """
    ref = weakref.ref(pipeline)

    def at_exit() -> None:
        target = ref()
        if target is not None:
            target._at_exit()

    def register_finalizer(_: object = None) -> None:
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:
            mp_util.Finalize(None, at_exit, exitpriority=100)

    def after_fork_in_child() -> None:
        target = ref()
        if target is None:
            return
        target._after_fork_in_child()
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:  # runs after multiprocessing's own post-fork reset
            mp_util.register_after_fork(target, register_finalizer)

    atexit.register(at_exit)
    os.register_at_fork(after_in_child=after_fork_in_child)
    register_finalizer()  # a pipeline built inside a multiprocessing child
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:  # built in a fork hook, before multiprocessing's own reset
        mp_util.register_after_fork(pipeline, register_finalizer)
