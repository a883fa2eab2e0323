"""configure() → real Collector (rotel) → OTLP sink, over gRPC and over HTTP."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import metrics, trace

import otelkit
from otelkit.testing import OtlpSink, RotelCollector, wait_until

pytestmark = pytest.mark.collector


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_traces_metrics_and_logs_travel_through_the_collector(
    protocol: str, rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    endpoint = (
        rotel_collector.grpc_endpoint if protocol == "grpc" else rotel_collector.http_endpoint
    )
    telemetry = otelkit.configure(
        service_name="collector-test",
        service_version="9.9",
        environment="ci",
        resource_attributes={"team": "core"},
        endpoint=endpoint,
        protocol=protocol,
        metric_interval=3600,  # exported once, at shutdown
        coalesce_window=False,
    )
    with trace.get_tracer("it").start_as_current_span("travel") as span:
        logging.getLogger("it").warning("through the collector via %s", protocol)
    metrics.get_meter("it").create_counter("it.things").add(2)
    assert telemetry.shutdown(timeout=10)

    wait_until(
        lambda: otlp_sink.spans() and otlp_sink.logs() and otlp_sink.metric_names(), timeout=15
    )
    resource, proto_span = next((r, s) for r, s in otlp_sink.spans() if s.name == "travel")
    assert resource["service.name"] == "collector-test"
    assert resource["service.version"] == "9.9"
    assert resource["deployment.environment.name"] == "ci"
    assert resource["team"] == "core"
    ctx = span.get_span_context()
    assert int.from_bytes(proto_span.trace_id, "big") == ctx.trace_id
    record = next(
        rec
        for _, rec in otlp_sink.logs()
        if rec.body.string_value == f"through the collector via {protocol}"
    )
    assert int.from_bytes(record.trace_id, "big") == ctx.trace_id
    assert int.from_bytes(record.span_id, "big") == ctx.span_id
    assert record.severity_text == "WARN"
    assert "it.things" in otlp_sink.metric_names()


def test_the_collector_starts_on_fresh_ports_when_its_first_ones_were_taken(
    otlp_sink: OtlpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from otelkit import _testsupport

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = taken.getsockname()[1]
    real_free_port = _testsupport.free_port
    ports = iter([taken_port])  # the first attempt's gRPC port is in use
    monkeypatch.setattr(_testsupport, "free_port", lambda: next(ports, None) or real_free_port())
    try:
        collector = RotelCollector(otlp_sink)
    finally:
        taken.close()
    try:
        assert collector.grpc_port != taken_port  # started again, on other ports
        assert collector.process.poll() is None
    finally:
        collector.stop()
