"""Spawned relay children log through structlog and loguru; the host receives the records
with their attributes, exception, trace context and the child's resource."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk._logs import ReadableLogRecord

import otelkit
from otelkit.testing import wait_until

from . import children


@pytest.fixture
def host() -> Iterator[otelkit.Telemetry]:
    telemetry = otelkit.configure(service_name="bridges-host", relay=True, exporter="memory")
    yield telemetry
    telemetry.shutdown()
    assert "OTELKIT_RELAY" not in os.environ


def _record(host: otelkit.Telemetry, body: str) -> ReadableLogRecord:
    assert host.memory is not None
    return next(r for r in host.memory.logs.get_finished_logs() if r.log_record.body == body)


def _bodies(host: otelkit.Telemetry) -> set[object]:
    assert host.memory is not None
    return {r.log_record.body for r in host.memory.logs.get_finished_logs()}


@pytest.mark.parametrize(
    ("target", "tag", "event"),
    [
        (children.structlog_child, "structlog", "structlog event"),
        (children.loguru_child, "loguru", "loguru event {braces}"),
    ],
)
def test_a_spawned_child_s_bridged_records_reach_the_host(
    host: otelkit.Telemetry, target: Callable[[str], None], tag: str, event: str
) -> None:
    process = multiprocessing.get_context("spawn").Process(target=target, args=(tag,))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    failure = f"{tag} failure"
    wait_until(lambda: {event, failure} <= _bodies(host), timeout=20)
    record = _record(host, event)
    attributes = record.log_record.attributes or {}
    assert attributes["user"] == "ada"
    assert attributes["order"] == '{"id": 7}'
    assert attributes["code.file.path"] == children.__file__
    assert attributes["code.function.name"] == target.__name__
    assert record.resource.attributes["service.name"] == "child"
    assert record.resource.attributes["process.pid"] == process.pid
    assert record.instrumentation_scope.name == children.__name__
    if tag == "structlog":
        assert attributes["items"] == ("a", "b")
    errors = _record(host, failure).log_record.attributes or {}
    assert (errors["exception.type"], errors["exception.message"]) == ("ValueError", "bad row")
    assert host.memory is not None
    wait_until(
        lambda: any(s.name == f"{tag} span" for s in host.memory.spans.get_finished_spans()),  # type: ignore[union-attr]
        timeout=20,
    )
    span = next(s for s in host.memory.spans.get_finished_spans() if s.name == f"{tag} span")
    assert span.context is not None
    assert record.log_record.trace_id == span.context.trace_id
    assert record.log_record.span_id == span.context.span_id
