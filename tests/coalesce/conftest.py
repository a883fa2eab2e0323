"""Pipelines for the coalescing tests: our processor in front of in-memory exporters."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelkit.coalesce import CoalescingLogRecordProcessor, CoalescingSpanProcessor
from otelkit.testing import FakeClock, MemoryTelemetry

_names = itertools.count()


def signal_total(telemetry: MemoryTelemetry, name: str, signal: str) -> int:
    """The value of counter ``name`` for ``signal`` (its only attribute)."""
    return sum(
        point.value for attrs, point in telemetry.metric_points(name) if attrs == {"signal": signal}
    )


@dataclass
class LogPipeline:
    """LoggerProvider -> CoalescingLogRecordProcessor -> Simple -> in-memory exporter."""

    processor: CoalescingLogRecordProcessor
    provider: LoggerProvider
    exporter: InMemoryLogRecordExporter
    logger: logging.Logger
    clock: FakeClock
    telemetry: MemoryTelemetry

    def records(self) -> tuple[ReadableLogRecord, ...]:
        return self.exporter.get_finished_logs()

    def bodies(self) -> list[object]:
        return [r.log_record.body for r in self.records()]

    def summaries(self) -> list[ReadableLogRecord]:
        return [
            r
            for r in self.records()
            if r.log_record.attributes and "otelkit.coalesce.count" in r.log_record.attributes
        ]

    def metric(self, name: str) -> int:
        return signal_total(self.telemetry, name, "logs")


def make_log_pipeline(
    clock: FakeClock, telemetry: MemoryTelemetry, **options: object
) -> tuple[CoalescingLogRecordProcessor, LoggerProvider, InMemoryLogRecordExporter]:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    processor = CoalescingLogRecordProcessor(
        SimpleLogRecordProcessor(exporter),
        clock=clock,
        meter_provider=telemetry.meter_provider,
        **options,  # type: ignore[arg-type]
    )
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "host"}), shutdown_on_exit=False
    )
    provider.add_log_record_processor(processor)
    return processor, provider, exporter


@pytest.fixture
def log_options() -> dict[str, object]:
    """Options for the log pipeline's processor; override per test module or test."""
    return {}


@pytest.fixture
def log_pipeline(
    fake_clock: FakeClock, memory_telemetry: MemoryTelemetry, log_options: dict[str, object]
) -> Iterator[LogPipeline]:
    processor, provider, exporter = make_log_pipeline(fake_clock, memory_telemetry, **log_options)
    logger = logging.getLogger(f"tests.coalesce.{next(_names)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = LoggingHandler(logger_provider=provider, log_code_attributes=True)
    logger.addHandler(handler)
    yield LogPipeline(processor, provider, exporter, logger, fake_clock, memory_telemetry)
    logger.removeHandler(handler)
    provider.shutdown()


@dataclass
class SpanPipeline:
    """TracerProvider -> CoalescingSpanProcessor -> Simple -> in-memory exporter."""

    processor: CoalescingSpanProcessor
    provider: TracerProvider
    exporter: InMemorySpanExporter
    clock: FakeClock
    telemetry: MemoryTelemetry

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def names(self) -> list[str]:
        return [s.name for s in self.spans()]

    def summaries(self) -> list[ReadableSpan]:
        return [
            s for s in self.spans() if s.attributes and "otelkit.coalesce.count" in s.attributes
        ]

    def metric(self, name: str) -> int:
        return signal_total(self.telemetry, name, "traces")


@pytest.fixture
def span_options() -> dict[str, object]:
    """Options for the span pipeline's processor; override per test module or test."""
    return {}


@pytest.fixture
def span_pipeline(
    fake_clock: FakeClock, memory_telemetry: MemoryTelemetry, span_options: dict[str, object]
) -> Iterator[SpanPipeline]:
    exporter = InMemorySpanExporter()
    processor = CoalescingSpanProcessor(
        SimpleSpanProcessor(exporter),
        clock=fake_clock,
        meter_provider=memory_telemetry.meter_provider,
        **span_options,  # type: ignore[arg-type]
    )
    provider = TracerProvider(
        resource=Resource.create({"service.name": "host"}), shutdown_on_exit=False
    )
    provider.add_span_processor(processor)
    yield SpanPipeline(processor, provider, exporter, fake_clock, memory_telemetry)
    provider.shutdown()
