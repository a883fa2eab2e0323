"""OTLP/HTTP exporters that encode with :mod:`otelkit.export` and send through the SDK's.

Everything but the encoding (and gzip's level) is the SDK exporter's: its client sets headers,
applies the timeout and TLS settings, retries with backoff and reads every
``OTEL_EXPORTER_OTLP_*`` variable. If that client cannot be used (see
``otelkit._sdk.transport``), each batch goes through the SDK exporter's public ``export()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelkit._errors import report_internal_error
from otelkit._sdk.transport import http_sender
from otelkit.export._logs import encode_logs, encoded_log_record
from otelkit.export._spans import encode_spans, encoded_span

if TYPE_CHECKING:  # imported when an exporter is made: a relay child never loads requests
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

__all__ = ["OtlpHttpLogExporter", "OtlpHttpSpanExporter"]


def _send(
    send: Callable[[bytes], bool] | None, encode: Callable[[Any], bytes], batch: Any, what: str
) -> bool | None:
    """``None``: use the SDK exporter's own ``export()``; else whether ``batch`` was sent."""
    if send is None:
        return None
    try:
        data = encode(batch)
    except Exception as exc:  # noqa: BLE001 - counted as a failed export by the caller
        report_internal_error(f"export.{what}", exc)
        return False
    return send(data)


class OtlpHttpLogExporter(LogRecordExporter):
    """An OTLP/HTTP log exporter: the SDK's ``OTLPLogExporter`` (``inner``, built with the
    same arguments when not given) sending what :func:`otelkit.export.encode_logs` writes.

    ``inner`` becomes this exporter's own: with gzip, its client is set to send the bytes
    this exporter compressed (at level 6) as they are, so export through this exporter
    only, and it is shut down with this exporter."""

    def __init__(self, inner: OTLPLogExporter | None = None, **options: Any) -> None:
        if inner is None:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

            inner = OTLPLogExporter(**options)
        self.inner = inner
        self._sender = http_sender(self.inner, "logs")
        self._closed = False

    def record_encoder(self) -> Callable[[ReadWriteLogRecord], Any] | None:
        """What a batch processor may queue for each emitted record in place of its copy,
        written when it is emitted (:meth:`export` takes those items as it takes records);
        ``None`` when batches go through the SDK exporter's own ``export()``, which needs
        the records."""
        return encoded_log_record if self._sender is not None else None

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Encode and send ``batch`` (or what :meth:`record_encoder` made of its records)
        once, retrying as the SDK's exporter does."""
        if self._closed:
            return LogRecordExportResult.FAILURE
        sent = _send(self._sender, encode_logs, batch, "logs")
        if sent is None:
            return self.inner.export(batch)
        return LogRecordExportResult.SUCCESS if sent else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Stop sending (a retry waiting for its back-off gives up); later batches fail."""
        self._closed = True
        self._sender = None
        self.inner.shutdown()  # type: ignore[no-untyped-call]


class OtlpHttpSpanExporter(SpanExporter):
    """An OTLP/HTTP span exporter: the SDK's ``OTLPSpanExporter`` (``inner``, built with
    the same arguments when not given) sending what :func:`otelkit.export.encode_spans`
    writes.

    ``inner`` becomes this exporter's own, as for :class:`OtlpHttpLogExporter`."""

    def __init__(self, inner: OTLPSpanExporter | None = None, **options: Any) -> None:
        if inner is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            inner = OTLPSpanExporter(**options)
        self.inner = inner
        self._sender = http_sender(self.inner, "spans")
        self._closed = False

    def span_encoder(self) -> Callable[[ReadableSpan], Any] | None:
        """What a batch processor may queue for each span in place of the span, written
        when it ends (:meth:`export` takes those items as it takes spans); ``None`` when
        batches go through the SDK exporter's own ``export()``, which needs the spans."""
        return encoded_span if self._sender is not None else None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode and send ``spans`` (or what :meth:`span_encoder` made of them) once,
        retrying as the SDK's exporter does."""
        if self._closed:
            return SpanExportResult.FAILURE
        sent = _send(self._sender, encode_spans, spans, "spans")
        if sent is None:
            return self.inner.export(spans)
        return SpanExportResult.SUCCESS if sent else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Stop sending (a retry waiting for its back-off gives up); later batches fail."""
        self._closed = True
        self._sender = None
        self.inner.shutdown()  # type: ignore[no-untyped-call]
