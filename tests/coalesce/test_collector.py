"""End to end through a real Collector (rotel): what arrives is the first record + a summary."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelkit.coalesce import COUNT_ATTRIBUTE, CoalescingLogRecordProcessor, CoalescingSpanProcessor
from otelkit.testing import (
    FakeClock,
    MemoryTelemetry,
    OtlpSink,
    RotelCollector,
    proto_attributes,
    wait_until,
)

pytestmark = pytest.mark.collector


def test_a_log_flood_arrives_as_the_first_record_and_one_summary(
    rotel_collector: RotelCollector,
    otlp_sink: OtlpSink,
    fake_clock: FakeClock,
    memory_telemetry: MemoryTelemetry,
) -> None:
    exporter = OTLPLogExporter(endpoint=rotel_collector.http_endpoint + "/v1/logs", timeout=5)
    processor = CoalescingLogRecordProcessor(
        BatchLogRecordProcessor(exporter),
        clock=fake_clock,
        meter_provider=memory_telemetry.meter_provider,
    )
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "coalesce-e2e"}), shutdown_on_exit=False
    )
    provider.add_log_record_processor(processor)
    logger = logging.getLogger("tests.coalesce.e2e")
    logger.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        for _ in range(500):
            logger.warning("upstream %s refused the connection", "db-1")
        assert processor.force_flush(10_000)  # the first record, without waiting for the window
        wait_until(lambda: len(otlp_sink.logs()) >= 1, timeout=15)
        fake_clock.advance(10)  # the window ends: the summary goes downstream
        assert processor.force_flush(10_000)
        wait_until(lambda: len(otlp_sink.logs()) >= 2, timeout=15)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    received = otlp_sink.logs()
    assert len(received) == 2
    (resource, first), (_, summary) = received
    assert resource["service.name"] == "coalesce-e2e"
    assert first.body.string_value == "upstream db-1 refused the connection"
    assert summary.body.string_value == first.body.string_value
    assert summary.severity_number == first.severity_number
    attributes = proto_attributes(summary.attributes)
    assert attributes[COUNT_ATTRIBUTE] == 500
    assert COUNT_ATTRIBUTE not in proto_attributes(first.attributes)


def test_a_repeated_trace_arrives_once_plus_a_linked_summary_span(
    rotel_collector: RotelCollector,
    otlp_sink: OtlpSink,
    fake_clock: FakeClock,
    memory_telemetry: MemoryTelemetry,
) -> None:
    exporter = OTLPSpanExporter(endpoint=rotel_collector.http_endpoint + "/v1/traces", timeout=5)
    processor = CoalescingSpanProcessor(
        BatchSpanProcessor(exporter),
        clock=fake_clock,
        meter_provider=memory_telemetry.meter_provider,
    )
    provider = TracerProvider(
        resource=Resource.create({"service.name": "coalesce-e2e"}), shutdown_on_exit=False
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("tests")
    try:
        for _ in range(20):
            with tracer.start_as_current_span("poll"), tracer.start_as_current_span("query"):
                pass
        fake_clock.advance(10)
        assert processor.force_flush(10_000)
        wait_until(lambda: len(otlp_sink.spans()) >= 3, timeout=15)
    finally:
        provider.shutdown()
    spans = [span for _, span in otlp_sink.spans()]
    assert sorted(span.name for span in spans) == ["poll", "poll", "query"]
    summary = next(s for s in spans if COUNT_ATTRIBUTE in proto_attributes(s.attributes))
    first_root = next(
        s
        for s in spans
        if s.name == "poll" and COUNT_ATTRIBUTE not in proto_attributes(s.attributes)
    )
    assert proto_attributes(summary.attributes)[COUNT_ATTRIBUTE] == 20
    assert [link.span_id for link in summary.links] == [first_root.span_id]
