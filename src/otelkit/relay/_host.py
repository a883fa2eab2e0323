"""The host side of the relay: a Unix socket server feeding the host's own processors.

One thread runs a selector loop over the listening socket and every child connection.
A connection must open with the handshake (version byte + token); then each whole frame
goes to the :class:`~otelkit.relay._intake.Intake`, which decodes it in full and hands its
records to the host's span and log record processors (so the host's coalescer and batch
exporter treat them like its own) and its metric batches to the host's metric exporter.
A bad handshake, an oversized frame or a malformed payload closes that connection only and
is counted.

Back-pressure: the serving thread offers records under :func:`otelkit._batch.blocking_offers`,
so when otelkit's batch queue is full it waits instead of dropping. It then reads no socket,
the children's writes stall, and the pressure lands in each child's bounded, severity-aware
buffer, where drops are counted and reported. Children are read in turn, one ``recv`` each,
so a flooding child cannot starve the others.
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
from collections.abc import Mapping
from types import MappingProxyType

from opentelemetry.metrics import MeterProvider, get_meter_provider
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor

from otelkit._batch import blocking_offers
from otelkit._clock import REAL_CLOCK, Clock
from otelkit._drops import DropLedger
from otelkit._errors import report_internal_error
from otelkit._fork import after_fork_in_child
from otelkit._threads import start_daemon
from otelkit._validate import check_instance, check_positive, check_positive_int
from otelkit.relay._decode import Decoder
from otelkit.relay._dropfile import collect_drop_files
from otelkit.relay._host_metrics import RelayedMetrics
from otelkit.relay._intake import Intake
from otelkit.relay._wire import (
    HANDSHAKE_SIZE,
    FrameDecoder,
    FrameError,
    RelayAddress,
    check_handshake,
    encode_refusal,
    encode_reply,
)

__all__ = ["RelayHost"]

_SOCKET_NAME = "relay.sock"
_RECV_SIZE = 256 * 1024
_UNREAD_LIMIT = 64 * 1024 * 1024  # bytes counted at close per connection, unread


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


def _check_options(
    *,
    span_processor: object,
    log_processor: object,
    metric_exporter: object,
    drops: object,
    max_frame_bytes: object,
    address: object,
    drop_report_interval: object,
    handshake_timeout: object,
    max_connections: object,
) -> None:
    where = "RelayHost"
    check_instance(where, "span_processor", span_processor, SpanProcessor, "an SDK SpanProcessor")
    check_instance(
        where, "log_processor", log_processor, LogRecordProcessor, "an SDK LogRecordProcessor"
    )
    check_positive_int(where, "max_frame_bytes", max_frame_bytes)
    check_positive_int(where, "max_connections", max_connections)
    check_positive(where, "drop_report_interval", drop_report_interval)
    check_positive(where, "handshake_timeout", handshake_timeout)
    if address is not None:
        check_instance(
            where, "address", address, RelayAddress, "a RelayAddress (RelayAddress.parse(...))"
        )
    if metric_exporter is not None:
        check_instance(
            where, "metric_exporter", metric_exporter, MetricExporter, "an SDK MetricExporter"
        )
    if drops is not None:
        check_instance(where, "drops", drops, DropLedger, "an otelkit DropLedger")


class RelayHost:
    """Receives child processes' batches and re-emits them into the host pipeline."""

    def __init__(
        self,
        *,
        span_processor: SpanProcessor,
        log_processor: LogRecordProcessor,
        meter_provider: MeterProvider | None = None,
        metric_exporter: MetricExporter | None = None,
        max_frame_bytes: int = 4 * 1024 * 1024,
        clock: Clock | None = None,
        resource: Resource | None = None,
        address: RelayAddress | None = None,
        drop_report_interval: float = 60.0,
        handshake_timeout: float = 5.0,
        max_connections: int = 1024,
        _drops: DropLedger | None = None,
    ) -> None:
        # ``_drops``: the ledger of the pipeline that configure() builds, so the host's drops
        # are reported with the rest of that pipeline's (not part of the public signature).
        drops = _drops
        _check_options(
            span_processor=span_processor,
            log_processor=log_processor,
            metric_exporter=metric_exporter,
            drops=drops,
            max_frame_bytes=max_frame_bytes,
            address=address,
            drop_report_interval=drop_report_interval,
            handshake_timeout=handshake_timeout,
            max_connections=max_connections,
        )
        self._max_frame = max_frame_bytes
        self._clock = clock or REAL_CLOCK
        self._resource = resource or Resource.create({})
        self._address = address
        self._interval = float(drop_report_interval)
        self._handshake_timeout = float(handshake_timeout)
        self._max_connections = max_connections
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._drain_deadline = 0.0
        self._dir: str | None = None
        self._conns: dict[int, _Conn] = {}
        self._next_expiry = 0.0
        self._stats: dict[str, int] = {
            "connections": 0,
            "logs": 0,
            "spans": 0,
            "metric_points": 0,
            "dropped_logs": 0,
            "dropped_spans": 0,
            "dropped_metric_points": 0,
            "rejected": 0,
            "frame_errors": 0,
        }
        """Running totals (also exported as ``otelkit.relay.*`` metrics)."""
        provider = meter_provider or get_meter_provider()
        if drops is None:  # a host of its own: it reports its children's drops itself
            drops = DropLedger(meter_provider=provider, clock=self._clock, interval=self._interval)
            drops.attach(log_processor, self._resource)
        self._ledger = drops
        meter = provider.get_meter("otelkit.relay")
        self._intake = Intake(
            span_processor=span_processor,
            log_processor=log_processor,
            metrics=RelayedMetrics(metric_exporter, drops) if metric_exporter else None,
            ledger=drops,
            meter=meter,
            stats=self._stats,
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
        self._thread = start_daemon(self._serve, name="otelkit-relay-host")
        after_fork_in_child(self, RelayHost._forget_after_fork)

    @property
    def stats(self) -> Mapping[str, int]:
        """What the relay has served so far, a read-only snapshot: ``connections``,
        ``logs``, ``spans``, ``metric_points`` received, the children's reported drops
        (``dropped_logs``, ``dropped_spans``, ``dropped_metric_points``), ``rejected``
        connections and ``frame_errors``."""
        return MappingProxyType(dict(self._stats))

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
        """Read what children have already written (within ``timeout`` seconds), then stop
        serving, close every connection, report pending drops and remove the directory."""
        thread = self._thread
        if thread is None or self._stopping:
            return
        deadline = self._clock.monotonic() + max(0.0, timeout)
        self._drain_deadline = deadline
        self._stopping = True
        with contextlib.suppress(OSError):
            self._waker_w.send(b"x")
        thread.join(max(0.0, deadline - self._clock.monotonic()) + 0.2)
        for conn in list(self._conns.values()):
            if not thread.is_alive():  # else the serving thread may still read this socket
                self._count_unread(conn)
            self._drop(conn)
        self._selector.close()
        for sock in (self._listener, self._waker_r, self._waker_w):
            sock.close()
        self._intake.close(max(0.0, deadline - self._clock.monotonic()))
        self._collect_drop_files()
        self._ledger.report_now()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    # ---- serving ---------------------------------------------------------------------
    def _serve(self) -> None:
        with blocking_offers(self._past_drain):
            self._serve_until_drained()

    def _past_drain(self) -> bool:
        return self._stopping and self._clock.monotonic() >= self._drain_deadline

    def _serve_until_drained(self) -> None:
        """Serve until closed; then go on reading while children's data is waiting, up to
        the close deadline (what a child wrote before it exited is still in its socket)."""
        while True:
            read_any = False
            try:
                events = self._selector.select(timeout=0 if self._stopping else 0.5)
                for key, _ in events:
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            self._waker_r.recv(64)
                    else:
                        read_any = True
                        self._read(key.data)
                self._expire_handshakes()
            except Exception as exc:  # noqa: BLE001 - the relay keeps serving the others
                report_internal_error("relay.host", exc)
            if self._stopping and (not read_any or self._past_drain()):
                return

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
                try:
                    check_handshake(conn.handshake[:HANDSHAKE_SIZE], self.address.token)
                except FrameError as exc:
                    if exc.reason == "version":  # tell the child why, then close
                        with contextlib.suppress(OSError):
                            conn.sock.send(encode_refusal())
                    raise
                data, conn.handshake = conn.handshake[HANDSHAKE_SIZE:], b""
                conn.sock.send(encode_reply())
                conn.authed = True
                self._stats["connections"] += 1
                self._m_connections.add(1)
            for frame_type, payload in conn.wire.feed(data):
                self._intake.handle(conn.decoder, frame_type, payload)
        except FrameError as exc:
            if conn.authed:
                self._frame_error(exc)
            else:
                self._reject(exc.reason)
            self._drop(conn)
        except OSError:
            self._drop(conn)

    def _count_unread(self, conn: _Conn) -> None:
        """What a child wrote that the drain deadline left unread: read it now (without
        waiting, at most ``_UNREAD_LIMIT`` bytes a connection) and count its records as
        dropped, so that a close never loses records silently. A frame left incomplete
        counts as a ``truncated`` frame error (its records cannot be counted)."""
        if not conn.authed:
            return
        budget = _UNREAD_LIMIT
        try:
            while budget > 0:
                try:
                    data = conn.sock.recv(min(_RECV_SIZE, budget))
                except (BlockingIOError, InterruptedError, OSError):
                    break
                if not data:
                    break
                budget -= len(data)
                for frame_type, payload in conn.wire.feed(data):
                    self._intake.count_unread(conn.decoder, frame_type, payload)
            if conn.wire.pending_bytes:
                self._frame_error(FrameError("truncated", "unread at close, cut off"))
        except FrameError as exc:
            self._frame_error(exc)
        except Exception as exc:  # noqa: BLE001 - closing must go on
            report_internal_error("relay.host", exc)

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
        self._collect_drop_files()

    def _collect_drop_files(self) -> None:
        """Drop reports children left in the directory when their link was not read in
        time (see :mod:`otelkit.relay._dropfile`)."""
        if self._dir is not None:
            self._intake.add_drops(*collect_drop_files(self._dir))

    def _reject(self, reason: str) -> None:
        self._stats["rejected"] += 1
        self._m_rejected.add(1, {"otelkit.relay.reason": reason})

    def _frame_error(self, exc: FrameError) -> None:
        self._stats["frame_errors"] += 1
        self._m_errors.add(1, {"otelkit.relay.reason": exc.reason})


def _private_dir(path: str) -> str:
    """Create ``path`` 0700 if missing; refuse one that others can enter or do not own."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ValueError(f"RelayHost: {path!r} must be a directory owned by us with mode 0700")
    return path
