"""Sending pre-encoded OTLP bytes through an SDK OTLP/HTTP exporter's own client.

The SDK's HTTP exporters encode a batch (``encode_logs(batch).SerializeToString()``) and
hand the bytes to a client that does everything else users rely on: compression, headers,
timeouts, TLS settings, retries with backoff, every ``OTEL_EXPORTER_OTLP_*`` variable.
otelkit writes those bytes faster itself (:mod:`otelkit.export`) and hands them to the same
client, a private attribute (``exporter._client``). The self-check runs the public
``export()`` against a recording client and requires that it sends exactly the official
encoding of the batch through ``_client.export(data)``; if not, :func:`http_sender` gives
``None`` and the caller exports through the public ``export()`` (the SDK's own encoding).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from otelkit._sdk._check import checked

__all__ = ["exporters_have_a_client", "http_sender", "http_sender_ok"]

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
    shortcut failed its self-check (checked once per signal, on first use)."""
    if not http_sender_ok(signal):
        return None
    client = exporter._client

    def send(data: bytes) -> bool:
        return bool(client.export(data).success)

    return send
