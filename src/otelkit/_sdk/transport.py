"""Sending pre-encoded OTLP bytes through an SDK OTLP/HTTP exporter's own client.

The SDK's HTTP exporters encode a batch (``encode_logs(batch).SerializeToString()``) and
hand the bytes to a client that does everything else users rely on: compression, headers,
timeouts, TLS settings, retries with backoff, every ``OTEL_EXPORTER_OTLP_*`` variable.
otelkit writes those bytes faster itself (:mod:`otelkit.export`) and hands them to the same
client, a private attribute (``exporter._client``). The self-check runs the public
``export()`` against a recording client and requires that it sends exactly the official
encoding of the batch through ``_client.export(data)``; if not, :func:`http_sender` gives
``None`` and the caller exports through the public ``export()`` (the SDK's own encoding).

Gzip: the client compresses with ``gzip.GzipFile`` at level 9, which on OTLP requests
costs several times what level 6 (zlib's default) costs for requests barely smaller, if at
all (see ``docs/sdk-seam.md``). Where the client
compresses with gzip, the sender compresses at level 6 itself and hands the client bytes to
send as they are (the client keeps its ``Content-Encoding: gzip`` header); the
``gzip_level`` self-check proves on a recording transport that the client then sends those
bytes unchanged, under that header.
"""

from __future__ import annotations

import gzip
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from otelkit._sdk._check import checked

__all__ = [
    "GZIP_LEVEL",
    "exporters_have_a_client",
    "gzip_level_ok",
    "http_sender",
    "http_sender_ok",
]

GZIP_LEVEL = 6
"""The gzip level the sender compresses at (the SDK's client: 9)."""

Sender = Callable[[bytes], bool]


class _Sent:
    success = True
    status_code = 200
    reason = None
    error = None


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def export(self, data: bytes) -> _Sent:
        self.sent.append(data)
        return _Sent()

    def shutdown(self) -> None:
        pass


def _sends_through_client(exporter: Any, batch: Any, encode: Callable[[Any], Any]) -> bool:
    client = exporter._client
    params = list(inspect.signature(type(client).export).parameters)
    if params != ["self", "data"]:
        return False
    recorder = _Recorder()
    exporter._client = recorder
    try:
        ok = exporter.export(batch).name == "SUCCESS"
    finally:
        exporter._client = client
        exporter.shutdown()
    return ok and recorder.sent == [encode(batch).SerializeToString()]


def _check_logs() -> bool:
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    provider = LoggerProvider(shutdown_on_exit=False)
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    provider.get_logger("otelkit.check").emit(body="check", attributes={"n": 1})
    batch = memory.get_finished_logs()
    exporter = OTLPLogExporter(endpoint="http://127.0.0.1:9/v1/logs")
    return len(batch) == 1 and _sends_through_client(exporter, batch, encode_logs)


def _check_spans() -> bool:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider(shutdown_on_exit=False)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("otelkit.check").start_span("check", attributes={"n": 1}).end()
    batch = memory.get_finished_spans()
    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    return len(batch) == 1 and _sends_through_client(exporter, batch, encode_spans)


class _Result:
    status_code = 200
    reason = "OK"
    error = None


class _RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[Mapping[str, str], bytes]] = []

    def request(
        self, method: str, url: str, headers: Mapping[str, str], data: bytes, timeout: float
    ) -> _Result:
        self.sent.append((dict(headers), data))
        return _Result()

    def is_connection_error(self, exception: Exception | None) -> bool:
        return False

    def close(self) -> None:
        pass


def _gzipping_client(client: Any) -> bool:
    compression = getattr(client, "_compression", None)  # absent: not a client we know
    return compression is not None and compression is getattr(type(compression), "GZIP", None)


def _check_gzip_level() -> bool:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint="http://127.0.0.1:9/v1/logs", compression=Compression.Gzip)
    try:
        client: Any = exporter._client
        if not _gzipping_client(client):
            return False
        transport = _RecordingTransport()
        client._transport = transport
        _send_compressed(client)
        payload = b"otelkit check " * 64
        data = gzip.compress(payload, GZIP_LEVEL)
        ok = client.export(data).success
        (headers, sent), *more = transport.sent
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]
    encoding = {k.lower(): v for k, v in headers.items()}.get("content-encoding")
    return bool(ok) and not more and sent == data and encoding == "gzip"


def gzip_level_ok() -> bool:
    """Whether the sender may compress at :data:`GZIP_LEVEL` itself (checked once, on first
    use)."""
    if "gzip" not in _ok:
        _ok["gzip"] = checked("gzip_level", _check_gzip_level)
    return _ok["gzip"]


def _send_compressed(client: Any) -> None:
    # The client then sends what it is given as it is, under the header it set for gzip.
    client._compression = type(client._compression).NONE


_ok: dict[str, bool] = {}
_CHECKS = {"logs": _check_logs, "spans": _check_spans}


def http_sender_ok(signal: str) -> bool:
    """Whether the shortcut passed its self-check for ``signal`` (checked once, on first use:
    building the check's exporter imports the HTTP stack)."""
    if signal not in _ok:
        _ok[signal] = checked(f"http_sender.{signal}", _CHECKS[signal])
    return _ok[signal]


def exporters_have_a_client() -> bool:
    """Whether this SDK release's OTLP/HTTP exporters send through a client of their own
    (1.4x on), whatever the self-check says (for the seam's tests)."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint="http://127.0.0.1:9/v1/logs")
    try:
        return hasattr(exporter, "_client")
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]


def http_sender(exporter: Any, signal: str) -> Sender | None:
    """For an SDK OTLP/HTTP exporter of ``signal`` (``"logs"`` or ``"spans"``): a function
    that sends one serialized export request through the exporter's client (compression,
    headers, timeout, TLS, retries) and says whether it was accepted; ``None`` when the
    shortcut failed its self-check (checked once per signal, on first use). Gzip is
    written at :data:`GZIP_LEVEL` by the sender where ``gzip_level`` passed its check."""
    if not http_sender_ok(signal):
        return None
    client = exporter._client
    if _gzipping_client(client) and gzip_level_ok():
        _send_compressed(client)

        def send_gzipped(data: bytes) -> bool:
            return bool(client.export(gzip.compress(data, GZIP_LEVEL)).success)

        return send_gzipped

    def send(data: bytes) -> bool:
        return bool(client.export(data).success)

    return send
