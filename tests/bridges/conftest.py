"""Fixtures for the structlog and loguru bridges: each test configures structlog and adds
loguru handlers of its own, and gets the libraries' defaults back afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from loguru import logger as loguru_logger
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

import otelkit


@pytest.fixture(autouse=True)
def _library_defaults() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def loguru_handlers() -> Iterator[Callable[..., int]]:
    """``add(sink, **options)``: ``loguru.logger.add`` whose handlers go at teardown."""
    added: list[int] = []

    def add(sink: Any, **options: Any) -> int:
        handler_id = loguru_logger.add(sink, **options)
        added.append(handler_id)
        return handler_id

    yield add
    for handler_id in added:
        loguru_logger.remove(handler_id)


class Records:
    """A private LoggerProvider writing synchronously to memory (nothing global)."""

    def __init__(self) -> None:
        self.exporter = InMemoryLogRecordExporter()
        self.provider = LoggerProvider(
            resource=Resource.create({"service.name": "bridges"}), shutdown_on_exit=False
        )
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))

    def all(self) -> tuple[ReadableLogRecord, ...]:
        return self.exporter.get_finished_logs()

    def one(self) -> ReadableLogRecord:
        (record,) = self.all()
        return record


@pytest.fixture
def records() -> Iterator[Records]:
    found = Records()
    yield found
    found.provider.shutdown()


def bodies(telemetry: otelkit.Telemetry) -> list[Any]:
    assert telemetry.memory is not None
    return [r.log_record.body for r in telemetry.memory.logs.get_finished_logs()]
