"""The pytest plugin that installing otelkit registers (the ``pytest11`` entry point).

pytest imports it into every run of every project that has otelkit installed, so it imports
nothing but pytest: each fixture imports what it needs from :mod:`otelkit.testing` when a
test asks for it. A run that uses none of them loads neither the OpenTelemetry SDK nor
protobuf, and gets none of otelkit's process hooks (fork, exit, signals).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from otelkit import Telemetry
    from otelkit.testing import FakeClock, MemoryTelemetry, OtlpSink, RotelCollector

__all__ = ["fake_clock", "memory_telemetry", "otelkit_memory", "otlp_sink", "rotel_collector"]


@pytest.fixture
def fake_clock() -> FakeClock:
    """A FakeClock; move it with ``fake_clock.advance(seconds)``."""
    from otelkit.testing import FakeClock

    return FakeClock()


@pytest.fixture
def memory_telemetry() -> Iterator[MemoryTelemetry]:
    """Private in-memory tracer, logger and meter providers (nothing global)."""
    from otelkit.testing import MemoryTelemetry

    telemetry = MemoryTelemetry()
    yield telemetry
    telemetry.shutdown()


@pytest.fixture
def otelkit_memory() -> Iterator[Telemetry]:
    """``otelkit.configure(exporter="memory", logging_level="DEBUG")`` for one test."""
    from otelkit import configure

    telemetry = configure(service_name="test", exporter="memory", logging_level="DEBUG")
    yield telemetry
    telemetry.shutdown()


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    """An OTLP/HTTP receiver on a free loopback port."""
    from otelkit.testing import OtlpSink

    sink = OtlpSink()
    yield sink
    sink.close()


@pytest.fixture
def rotel_collector(otlp_sink: OtlpSink) -> Iterator[RotelCollector]:
    """A real Collector (rotel) on free loopback ports, forwarding to ``otlp_sink``."""
    from otelkit._testsupport import rotel_binary
    from otelkit.testing import RotelCollector

    if rotel_binary() is None:
        pytest.skip("rotel is not installed: pip install 'otelkit[test]'")
    collector = RotelCollector(otlp_sink)
    try:
        yield collector
    finally:
        collector.stop()
