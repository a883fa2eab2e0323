"""Standard SDK exporters that send to the relay, for hand-assembled pipelines.

Put them behind the SDK's ``BatchLogRecordProcessor`` / ``BatchSpanProcessor``: those own
the buffering and the export thread, the exporters only encode a batch (as OTLP, with
:mod:`otelkit.export`'s encoders) and write it.
:class:`~otelkit.relay.ChildPipeline` is the faster, severity-aware alternative.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelkit._fork import after_fork_in_child
from otelkit.export import encode_logs, encode_spans
from otelkit.relay._link import Link
from otelkit.relay._wire import FRAME_LOGS, FRAME_SPANS, RELAY_ENV, RelayAddress, encode_frame

__all__ = ["RelayLogExporter", "RelaySpanExporter"]


class _FrameSender:
    def __init__(self, env_value: str | None, timeout: float, owner: str) -> None:
        if env_value is None:
            env_value = os.environ.get(RELAY_ENV)
            if not env_value:
                raise ValueError(f"{owner}: pass env_value= or set {RELAY_ENV}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"{owner}: timeout must be a positive number of seconds")
        self._link = Link(RelayAddress.parse(env_value))
        self._timeout = float(timeout)
        self._lock = threading.Lock()
        self._shutdown = False
        after_fork_in_child(self, _FrameSender._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._link.reset_after_fork()

    def send(self, frame: bytes) -> bool:
        if self._shutdown:
            return False
        deadline = time.monotonic() + self._timeout
        with self._lock:
            while time.monotonic() < deadline:
                if self._link.ensure_connected():
                    return self._link.send(frame, abort=lambda: time.monotonic() >= deadline)
                time.sleep(0.02)
        return False

    def shutdown(self) -> None:
        self._shutdown = True
        with self._lock:
            self._link.close()


class RelayLogExporter(LogRecordExporter):
    """A ``LogRecordExporter`` writing batches to the relay named by ``env_value``
    (default: the ``OTELKIT_RELAY`` environment variable)."""

    def __init__(self, env_value: str | None = None, *, timeout: float = 10.0) -> None:
        self._sender = _FrameSender(env_value, timeout, "RelayLogExporter")

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Send one batch; ``FAILURE`` if the host could not be reached within the timeout."""
        ok = self._sender.send(encode_frame(FRAME_LOGS, encode_logs(batch)))
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        """Close the connection; later exports fail."""
        self._sender.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is held back: every export writes at once."""
        return True


class RelaySpanExporter(SpanExporter):
    """A ``SpanExporter`` writing OTLP batches to the relay named by ``env_value``
    (default: the ``OTELKIT_RELAY`` environment variable)."""

    def __init__(self, env_value: str | None = None, *, timeout: float = 10.0) -> None:
        self._sender = _FrameSender(env_value, timeout, "RelaySpanExporter")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Send one batch; ``FAILURE`` if the host could not be reached within the timeout."""
        frame = encode_frame(FRAME_SPANS, encode_spans(spans))
        ok = self._sender.send(frame)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Close the connection; later exports fail."""
        self._sender.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is held back: every export writes at once."""
        return True
