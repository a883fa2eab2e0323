"""The host side of the relay: a Unix socket server feeding the host's own processors.

One thread runs a selector loop over the listening socket and every child connection.
A connection must open with the handshake (version byte + token); then each frame is
decoded in full and its records are handed to the host's span and log record processors,
so the host's coalescer and batch exporter treat them like its own. A bad handshake, an
oversized frame or a malformed payload closes that connection only and is counted.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.metrics import MeterProvider, get_meter_provider
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._fork import after_fork_in_child
from otelkit.relay._decode import Decoder
from otelkit.relay._wire import (
    FRAME_DROPS,
    FRAME_LOGS,
    HANDSHAKE_SIZE,
    FrameDecoder,
    FrameError,
    RelayAddress,
    check_handshake,
    decode_drops,
    encode_reply,
)

__all__ = ["RelayHost"]

_SOCKET_NAME = "relay.sock"
_RECV_SIZE = 256 * 1024
_SCOPE = InstrumentationScope("otelkit.relay")


class _Conn:
    __slots__ = ("authed", "decoder", "frames", "handshake", "since", "sock", "wire")

    def __init__(self, sock: socket.socket, since: float, max_frame_bytes: int) -> None:
        self.sock = sock
        self.since = since
        self.authed = False
        self.handshake = b""
        self.wire = FrameDecoder(max_frame_bytes=max_frame_bytes)
        self.decoder = Decoder()
        self.frames = 0


class RelayHost:
    """Receives child processes' OTLP batches and re-emits them into the host pipeline."""

    def __init__(
        self,
        *,
        span_processor: SpanProcessor,
        log_processor: LogRecordProcessor,
        meter_provider: MeterProvider | None = None,
        max_frame_bytes: int = 4 * 1024 * 1024,
        clock: Clock | None = None,
        resource: Resource | None = None,
        address: RelayAddress | None = None,
        drop_report_interval: float = 60.0,
        handshake_timeout: float = 5.0,
        max_connections: int = 1024,
    ) -> None:
        if not isinstance(span_processor, SpanProcessor):
            raise TypeError("RelayHost: span_processor must be an SDK SpanProcessor")
        if not isinstance(log_processor, LogRecordProcessor):
            raise TypeError("RelayHost: log_processor must be an SDK LogRecordProcessor")
        for name, value in (
            ("max_frame_bytes", max_frame_bytes),
            ("max_connections", max_connections),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"RelayHost: {name} must be a positive int, got {value!r}")
        for name, number in (
            ("drop_report_interval", drop_report_interval),
            ("handshake_timeout", handshake_timeout),
        ):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number <= 0:
                raise ValueError(f"RelayHost: {name} must be a positive number, got {number!r}")
        if address is not None and not isinstance(address, RelayAddress):
            raise TypeError("RelayHost: address must be a RelayAddress (RelayAddress.parse(...))")
        self._spans = span_processor
        self._logs = log_processor
        self._max_frame = max_frame_bytes
        self._clock = clock or REAL_CLOCK
        self._resource = resource or Resource.create({})
        self._address = address
        self._interval = float(drop_report_interval)
        self._handshake_timeout = float(handshake_timeout)
        self._max_connections = max_connections
        self._lock = threading.Lock()
        self._drops = [0, 0]
        self._drop_timer: TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._dir: str | None = None
        self._conns: dict[int, _Conn] = {}
        self._next_expiry = 0.0
        self.stats: dict[str, int] = {
            "connections": 0,
            "logs": 0,
            "spans": 0,
            "dropped_logs": 0,
            "dropped_spans": 0,
            "rejected": 0,
            "frame_errors": 0,
        }
        """Running totals (also exported as ``otelkit.relay.*`` metrics)."""
        meter = (meter_provider or get_meter_provider()).get_meter("otelkit.relay")
        self._m_records = meter.create_counter(
            "otelkit.relay.records", unit="{record}", description="Records received from children"
        )
        self._m_dropped = meter.create_counter(
            "otelkit.relay.dropped",
            unit="{record}",
            description="Records children dropped because their buffer was full",
        )
        self._m_rejected = meter.create_counter(
            "otelkit.relay.rejected",
            unit="{connection}",
            description="Connections refused at the handshake",
        )
        self._m_errors = meter.create_counter(
            "otelkit.relay.frame_errors",
            unit="{frame}",
            description="Connections closed for an oversized, malformed or truncated frame",
        )
        self._m_connections = meter.create_up_down_counter(
            "otelkit.relay.connections", unit="{connection}", description="Connected children"
        )

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Listen on the Unix socket and serve children on a background thread."""
        if self._thread is not None:
            raise RuntimeError("RelayHost.start: already started")
        if self._address is None:
            self._dir = tempfile.mkdtemp(prefix="otelkit-relay-")  # created 0700
            self._address = RelayAddress.generate(os.path.join(self._dir, _SOCKET_NAME))
        else:
            self._dir = _private_dir(os.path.dirname(self._address.path))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._address.path)  # a killed host's stale socket
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self._address.path)
            os.chmod(self._address.path, 0o600)
            listener.listen(128)
            listener.setblocking(False)
        except OSError:
            listener.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._listener = listener
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, "listen")
        self._selector.register(self._waker_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._serve, name="otelkit-relay-host", daemon=True)
        self._thread.start()
        after_fork_in_child(self, RelayHost._forget_after_fork)

    @property
    def address(self) -> RelayAddress:
        """The socket path and token (available after :meth:`start`)."""
        if self._address is None:
            raise RuntimeError("RelayHost: start() it first")
        return self._address

    @property
    def env_value(self) -> str:
        """The value for ``OTELKIT_RELAY``: ``<version>:<token hex>:<socket path>``."""
        return self.address.env_value()

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, close every connection, report pending drops, remove the directory."""
        thread = self._thread
        if thread is None or self._stopping:
            return
        self._stopping = True
        with contextlib.suppress(OSError):
            self._waker_w.send(b"x")
        thread.join(timeout)
        for conn in list(self._conns.values()):
            self._drop(conn)
        self._selector.close()
        for sock in (self._listener, self._waker_r, self._waker_w):
            sock.close()
        self._report_drops()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    # ---- serving ---------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stopping:
            try:
                events = self._selector.select(timeout=0.5)
                for key, _ in events:
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            self._waker_r.recv(64)
                    else:
                        self._read(key.data)
                self._expire_handshakes()
            except Exception as exc:  # noqa: BLE001 - the relay keeps serving the others
                report_internal_error("relay.host", exc)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            if len(self._conns) >= self._max_connections:
                sock.close()
                self._reject("too_many")
                continue
            sock.setblocking(False)
            conn = _Conn(sock, self._clock.monotonic(), self._max_frame)
            self._conns[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            if conn.wire.pending_bytes:
                self._frame_error(FrameError("truncated", "connection closed mid-frame"))
            self._drop(conn)
            return
        try:
            if not conn.authed:
                conn.handshake += data
                if len(conn.handshake) < HANDSHAKE_SIZE:
                    return
                check_handshake(conn.handshake[:HANDSHAKE_SIZE], self.address.token)
                data, conn.handshake = conn.handshake[HANDSHAKE_SIZE:], b""
                conn.sock.send(encode_reply())
                conn.authed = True
                self.stats["connections"] += 1
                self._m_connections.add(1)
            for frame_type, payload in conn.wire.feed(data):
                self._handle(conn, frame_type, payload)
        except FrameError as exc:
            if conn.authed:
                self._frame_error(exc)
            else:
                self._reject(exc.reason)
            self._drop(conn)
        except OSError:
            self._drop(conn)

    def _handle(self, conn: _Conn, frame_type: int, payload: bytes) -> None:
        if frame_type == FRAME_DROPS:
            self._add_drops(*decode_drops(payload))
            return
        emit: Callable[[Any], None]
        build: Callable[[Any], Any]
        if frame_type == FRAME_LOGS:
            # Decoded and checked in full first (a bad frame emits nothing); each SDK record
            # is built just before it is emitted.
            records: list[Any] = conn.decoder.log_fields(payload)
            emit = self._logs.on_emit
            build = conn.decoder.build_log
            signal = "logs"
        else:
            records = conn.decoder.spans(payload)
            emit = self._spans.on_end
            build = _same
            signal = "spans"
        for record in records:
            try:
                item: Any = build(record)
                emit(item)
            except Exception as exc:  # noqa: BLE001 - a processor bug is not the child's fault
                report_internal_error("relay.host", exc)
        self.stats[signal] += len(records)
        self._m_records.add(len(records), {"otelkit.relay.signal": signal})

    def _forget_after_fork(self) -> None:
        """In a forked child: close our copies of the sockets (no shutdown, the parent keeps
        serving) and never serve or remove anything here."""
        if self._thread is None or self._stopping:
            return
        self._stopping = True
        self._dir = None
        socks = [conn.sock for conn in self._conns.values()]
        socks += [self._listener, self._waker_r, self._waker_w]
        self._conns = {}
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
        with contextlib.suppress(OSError):
            self._selector.close()

    def _expire_handshakes(self) -> None:
        now = self._clock.monotonic()
        if now < self._next_expiry:
            return
        self._next_expiry = now + 0.5
        for conn in list(self._conns.values()):
            if not conn.authed and now - conn.since > self._handshake_timeout:
                self._reject("handshake_timeout")
                self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        if self._conns.pop(conn.sock.fileno(), None) is None:
            return
        with contextlib.suppress(Exception):
            self._selector.unregister(conn.sock)
        conn.sock.close()
        if conn.authed:
            self._m_connections.add(-1)

    def _reject(self, reason: str) -> None:
        self.stats["rejected"] += 1
        self._m_rejected.add(1, {"otelkit.relay.reason": reason})

    def _frame_error(self, exc: FrameError) -> None:
        self.stats["frame_errors"] += 1
        self._m_errors.add(1, {"otelkit.relay.reason": exc.reason})

    # ---- drop reports ---------------------------------------------------------------
    def _add_drops(self, logs: int, spans: int) -> None:
        for signal, n in (("logs", logs), ("spans", spans)):
            if n:
                self.stats[f"dropped_{signal}"] += n
                self._m_dropped.add(n, {"otelkit.relay.signal": signal})
        with self._lock:
            self._drops[0] += logs
            self._drops[1] += spans
            if self._drop_timer is None and (logs or spans):
                self._drop_timer = self._clock.call_later(self._interval, self._report_drops)

    def _report_drops(self) -> None:
        with self._lock:
            (logs, spans), self._drops = self._drops, [0, 0]
            if self._drop_timer is not None:
                self._drop_timer.cancel()
                self._drop_timer = None
        if not (logs or spans):
            return
        record = LogRecord(
            timestamp=int(self._clock.time() * 1e9),
            observed_timestamp=int(self._clock.time() * 1e9),
            severity_text="WARN",
            severity_number=SeverityNumber.WARN,
            body=f"relay children dropped {logs} log records and {spans} spans "
            f"(buffer full) in the last {self._interval:g} s",
            attributes={"otelkit.relay.dropped.logs": logs, "otelkit.relay.dropped.spans": spans},
        )
        try:
            self._logs.on_emit(
                ReadWriteLogRecord(record, resource=self._resource, instrumentation_scope=_SCOPE)
            )
        except Exception as exc:  # noqa: BLE001 - reporting must not break the relay
            report_internal_error("relay.host", exc)


def _same(item: Any) -> Any:
    return item


def _private_dir(path: str) -> str:
    """Create ``path`` 0700 if missing; refuse one that others can enter or do not own."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ValueError(f"RelayHost: {path!r} must be a directory owned by us with mode 0700")
    return path
