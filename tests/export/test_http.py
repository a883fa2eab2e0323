"""otelkit's OTLP/HTTP exporters: otelkit's encoding, the SDK exporter's transport."""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelkit
from otelkit import export
from otelkit._sdk import FALLBACKS_FORCED, transport
from otelkit.export import OtlpHttpLogExporter, OtlpHttpSpanExporter
from otelkit.testing import OtlpSink

pytestmark = pytest.mark.skipif(FALLBACKS_FORCED, reason="the shortcut is forced off")


class _Recorder(http.server.BaseHTTPRequestHandler):
    answers: list[int]
    seen: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.seen.append((dict(self.headers), body))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"answers": [], "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/logs", handler
    server.shutdown()
    server.server_close()


def _records(n: int) -> list[Any]:
    provider = LoggerProvider(shutdown_on_exit=False)
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    for i in range(n):
        provider.get_logger("shop").emit(body=f"event {i}", attributes={"i": i})
    return list(memory.get_finished_logs())


def test_configure_exports_http_with_otelkits_encoder(otlp_sink: OtlpSink) -> None:
    with (
        mock.patch.object(export._http, "encode_logs", wraps=export._http.encode_logs) as logs,
        mock.patch.object(export._http, "encode_spans", wraps=export._http.encode_spans) as spans,
        mock.patch.object(export._http, "encoded_span", wraps=export._http.encoded_span) as ended,
        mock.patch.object(
            export._http, "encoded_log_record", wraps=export._http.encoded_log_record
        ) as emitted,
    ):
        tel = otelkit.configure(
            service_name="fast", endpoint=otlp_sink.endpoint, coalesce_window=False
        )
        try:
            with trace.get_tracer("t").start_as_current_span("work"):
                import logging

                logging.getLogger("shop").warning("paid %d", 3)
            assert tel.force_flush(10)
        finally:
            tel.shutdown()
    # otelkit's encoder where the SDK's exporter sends through a client it can hand bytes to
    # (the seam's self-check); elsewhere the SDK exporter's own export(), with the same result.
    assert logs.called == transport.http_sender_ok("logs")
    assert spans.called == transport.http_sender_ok("spans")
    assert ended.called == transport.http_sender_ok("spans")  # each span written as it ended
    assert emitted.called == transport.http_sender_ok("logs")  # each record as it was emitted
    assert [s.name for _, s in otlp_sink.spans()] == ["work"]
    [(resource, record)] = [(r, rec) for r, rec in otlp_sink.logs() if rec.body.string_value]
    assert resource["service.name"] == "fast" and record.body.string_value == "paid 3"
    assert record.trace_id == otlp_sink.spans()[0][1].trace_id


def test_headers_and_gzip_are_the_sdk_exporters(recorder: tuple[str, type[_Recorder]]) -> None:
    url, handler = recorder
    exporter = OtlpHttpLogExporter(
        endpoint=url, headers={"x-tenant": "blue"}, compression=Compression.Gzip, timeout=5
    )
    batch = _records(3)
    assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    # The same records written as they were emitted (readable records carry every field
    # the encoder reads) make the same request; without the seam's client, no encoder.
    encoder = exporter.record_encoder()
    assert (encoder is not None) == transport.http_sender_ok("logs")
    if encoder is not None:
        assert exporter.export([encoder(r) for r in batch]) is LogRecordExportResult.SUCCESS
    exporter.shutdown()
    (headers, body), *encoded = handler.seen
    assert headers["x-tenant"] == "blue" and headers["Content-Encoding"] == "gzip"
    assert [gzip.decompress(b) for _, b in encoded] == [gzip.decompress(body)] * len(encoded)
    sent = ExportLogsServiceRequest.FromString(gzip.decompress(body))
    assert [r.body.string_value for r in sent.resource_logs[0].scope_logs[0].log_records] == [
        "event 0",
        "event 1",
        "event 2",
    ]


def test_gzip_is_written_at_level_6_not_at_the_sdk_clients_9(
    recorder: tuple[str, type[_Recorder]],
) -> None:
    url, handler = recorder
    batch = _records(3)
    for compression in (Compression.Gzip, Compression.NoCompression):
        exporter = OtlpHttpLogExporter(endpoint=url, compression=compression, timeout=5)
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS
        exporter.shutdown()
    (gzipped_headers, gzipped), (plain_headers, plain) = handler.seen
    assert gzipped_headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gzipped) == plain == export._http.encode_logs(batch)
    assert "Content-Encoding" not in plain_headers
    # A gzip member's extra-flags byte (offset 8) says 2 for level 9, 0 for levels 2 to 8.
    assert gzipped[8] == (0 if transport.gzip_level_ok() else 2)


def test_a_refused_batch_is_a_failed_export(recorder: tuple[str, type[_Recorder]]) -> None:
    url, handler = recorder
    handler.answers.append(400)  # not retryable
    exporter = OtlpHttpLogExporter(endpoint=url, timeout=5)
    assert exporter.export(_records(1)) is LogRecordExportResult.FAILURE
    exporter.shutdown()


def test_without_the_shortcut_batches_go_through_the_sdk_exporter(
    recorder: tuple[str, type[_Recorder]],
) -> None:
    url, handler = recorder
    with (
        mock.patch.object(export._http, "http_sender", return_value=None),
        mock.patch.object(export._http, "encode_logs") as ours,
    ):
        exporter = OtlpHttpLogExporter(endpoint=url, timeout=5)
        assert exporter.record_encoder() is None  # the SDK exporter's export() needs records
        assert exporter.export(_records(2)) is LogRecordExportResult.SUCCESS
        exporter.shutdown()
    assert not ours.called
    sent = ExportLogsServiceRequest.FromString(handler.seen[0][1])
    assert len(sent.resource_logs[0].scope_logs[0].log_records) == 2


def test_after_shutdown_a_batch_is_refused(recorder: tuple[str, type[_Recorder]]) -> None:
    url, handler = recorder
    exporter = OtlpHttpLogExporter(endpoint=url, timeout=5)
    encoder = exporter.record_encoder()
    exporter.shutdown()
    assert exporter.export(_records(1)) is LogRecordExportResult.FAILURE
    if encoder is not None:  # records written as they were emitted are refused as well
        encoded = [encoder(r) for r in _records(1)]
        assert exporter.export(encoded) is LogRecordExportResult.FAILURE
    assert handler.seen == []


def _spans(n: int) -> list[Any]:
    provider = TracerProvider(shutdown_on_exit=False)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(n):
        provider.get_tracer("shop").start_span(f"op {i}", attributes={"i": i}).end()
    return list(memory.get_finished_spans())


def test_spans_written_when_they_ended_are_sent_as_spans_are(
    recorder: tuple[str, type[_Recorder]],
) -> None:
    url, handler = recorder
    exporter = OtlpHttpSpanExporter(endpoint=url, timeout=5)
    encoder = exporter.span_encoder()
    assert (encoder is not None) == transport.http_sender_ok("spans")
    if encoder is None:
        exporter.shutdown()
        pytest.skip("this SDK release's exporter takes no pre-encoded bytes (the seam's fallback)")
    spans = _spans(3)
    assert exporter.export([encoder(span) for span in spans]) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert exporter.export([encoder(span) for span in spans]) is SpanExportResult.FAILURE
    first, second = (ExportTraceServiceRequest.FromString(body) for _, body in handler.seen)
    assert first == second
    assert [s.name for s in first.resource_spans[0].scope_spans[0].spans] == [
        "op 0",
        "op 1",
        "op 2",
    ]


def test_without_the_shortcut_the_batch_processor_is_given_no_span_encoder(
    recorder: tuple[str, type[_Recorder]],
) -> None:
    url, _ = recorder
    with mock.patch.object(export._http, "http_sender", return_value=None):
        exporter = OtlpHttpSpanExporter(endpoint=url, timeout=5)
    assert exporter.span_encoder() is None  # the SDK exporter's export() needs the spans
    exporter.shutdown()
