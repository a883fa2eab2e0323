"""Bridged records coalesce: events differing only in their attributes merge."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest
import structlog
from loguru import logger
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

import otelkit
from otelkit.bridges import LoguruSink, StructlogProcessor
from otelkit.coalesce import CoalescingLogRecordProcessor
from otelkit.testing import FakeClock

COUNT = "otelkit.coalesce.count"


class Coalesced:
    def __init__(self, clock: FakeClock) -> None:
        self.exporter = InMemoryLogRecordExporter()
        self.provider = LoggerProvider(
            resource=Resource.create({"service.name": "flood"}), shutdown_on_exit=False
        )
        self.provider.add_log_record_processor(
            CoalescingLogRecordProcessor(
                SimpleLogRecordProcessor(self.exporter), window=10.0, key="call_site", clock=clock
            )
        )

    def records(self) -> tuple[ReadableLogRecord, ...]:
        return self.exporter.get_finished_logs()


@pytest.fixture
def coalesced(fake_clock: FakeClock) -> Iterator[Coalesced]:
    pipeline = Coalesced(fake_clock)
    yield pipeline
    pipeline.provider.shutdown()


def _structlog(provider: LoggerProvider) -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            StructlogProcessor(logger_provider=provider),
            structlog.processors.KeyValueRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=io.StringIO()),
    )


def test_100_structlog_events_from_one_call_site_become_a_first_record_and_a_summary(
    coalesced: Coalesced, fake_clock: FakeClock
) -> None:
    _structlog(coalesced.provider)
    log = structlog.get_logger()
    for attempt in range(100):
        log.warning("upstream slow", attempt=attempt)
    (first,) = coalesced.records()
    assert (first.log_record.attributes or {})["attempt"] == 0
    fake_clock.advance(10.0)  # the window ends
    _, summary = coalesced.records()
    assert summary.log_record.body == "upstream slow"
    assert (summary.log_record.attributes or {})[COUNT] == 100
    assert (summary.log_record.attributes or {})["code.line.number"] == (
        (first.log_record.attributes or {})["code.line.number"]
    )


def test_two_call_sites_of_one_event_stay_apart(
    coalesced: Coalesced, fake_clock: FakeClock
) -> None:
    _structlog(coalesced.provider)
    log = structlog.get_logger()
    for attempt in range(10):
        log.warning("upstream slow", attempt=attempt)
        log.warning("upstream slow", attempt=attempt)
    assert len(coalesced.records()) == 2
    fake_clock.advance(10.0)
    counts = sorted((r.log_record.attributes or {}).get(COUNT, 0) for r in coalesced.records())
    assert counts == [0, 0, 10, 10]


def test_100_loguru_messages_from_one_call_site_become_a_first_record_and_a_summary(
    coalesced: Coalesced, fake_clock: FakeClock, loguru_handlers: Callable[..., int]
) -> None:
    loguru_handlers(LoguruSink(logger_provider=coalesced.provider), format="{message}")
    for shard in range(100):
        logger.bind(shard=shard).warning("shard {} lagging", shard)  # the body differs too
    assert len(coalesced.records()) == 1
    fake_clock.advance(10.0)
    _, summary = coalesced.records()
    assert (summary.log_record.attributes or {})[COUNT] == 100


def test_configure_s_default_coalescing_merges_structlog_events_differing_in_attributes(
    otelkit_memory: otelkit.Telemetry,
) -> None:
    structlog.configure(
        processors=[structlog.processors.add_log_level, StructlogProcessor()],
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    log = structlog.get_logger()
    for user in range(100):
        log.error("login failed", user=user)
    assert otelkit_memory.memory is not None
    assert len(otelkit_memory.memory.logs.get_finished_logs()) == 1
    otelkit_memory.force_flush()  # ends the open windows: the summary goes out
    _, summary = otelkit_memory.memory.logs.get_finished_logs()
    assert (summary.log_record.attributes or {})[COUNT] == 100
