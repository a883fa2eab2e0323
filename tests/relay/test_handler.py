"""The relay's stdlib logging handler: trace context read at the logging call."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import Resource

from otelkit.relay import ChildPipeline, RelayHost
from otelkit.testing import MemoryTelemetry, wait_until


@pytest.fixture
def pipeline(relay_host: RelayHost) -> Iterator[ChildPipeline]:
    pipe = ChildPipeline.from_env(relay_host.env_value, resource=Resource({"service.name": "c"}))
    yield pipe
    pipe.shutdown()


def test_records_carry_the_current_span_and_none_outside_a_span(
    pipeline: ChildPipeline, memory_telemetry: MemoryTelemetry
) -> None:
    logger = logging.getLogger("test.relay.handler")
    logger.handlers[:] = [pipeline.logging_handler()]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    tracer = memory_telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("op") as span:
        logger.info("inside")
    logger.info("outside")
    assert pipeline.force_flush(5000)
    wait_until(lambda: len(memory_telemetry.logs()) == 2, timeout=5)
    records = {r.log_record.body: r.log_record for r in memory_telemetry.logs()}
    context = span.get_span_context()
    inside = records["inside"]
    assert (inside.trace_id, inside.span_id) == (context.trace_id, context.span_id)
    assert int(inside.trace_flags or 0) == int(context.trace_flags)
    outside = records["outside"]
    assert (outside.trace_id, outside.span_id, int(outside.trace_flags or 0)) == (0, 0, 0)
