"""Fixtures for relay tests: an in-process relay host writing to in-memory exporters."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otelkit.relay import RELAY_ENV, RelayHost
from otelkit.testing import MemoryTelemetry


@pytest.fixture
def relay_host(memory_telemetry: MemoryTelemetry) -> Iterator[RelayHost]:
    """A started RelayHost feeding ``memory_telemetry``; ``OTELKIT_RELAY`` points at it."""
    host = RelayHost(
        span_processor=SimpleSpanProcessor(memory_telemetry.span_exporter),
        log_processor=SimpleLogRecordProcessor(memory_telemetry.log_exporter),
        meter_provider=memory_telemetry.meter_provider,
    )
    host.start()
    old = os.environ.get(RELAY_ENV)
    os.environ[RELAY_ENV] = host.env_value
    try:
        yield host
    finally:
        host.close(5)
        if old is None:
            os.environ.pop(RELAY_ENV, None)
        else:
            os.environ[RELAY_ENV] = old
