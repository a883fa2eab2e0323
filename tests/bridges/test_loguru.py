"""LoguruSink with the real loguru: each message becomes one OTel log record."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from loguru import logger
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider

import otelkit
from otelkit.bridges import LoguruSink

from .conftest import Records

AddHandler = Callable[..., int]


def _line() -> int:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


def test_a_message_becomes_a_record_of_the_global_pipeline(
    otelkit_memory: otelkit.Telemetry, loguru_handlers: AddHandler
) -> None:
    loguru_handlers(LoguruSink(), format="{message}", level="DEBUG")
    with trace.get_tracer("t").start_as_current_span("sync") as span:
        line = _line()
        logger.bind(tenant="acme").warning("synced {count} rows", count=3)
    otelkit_memory.force_flush()
    assert otelkit_memory.memory is not None
    (record,) = [
        r
        for r in otelkit_memory.memory.logs.get_finished_logs()
        if r.log_record.body == "synced 3 rows"
    ]
    lr = record.log_record
    assert (lr.severity_number, lr.severity_text) == (SeverityNumber.WARN, "WARN")
    assert dict(lr.attributes or {}) == {
        "tenant": "acme",
        "count": 3,  # loguru puts the call's keyword arguments into extra
        "code.file.path": __file__,
        "code.line.number": line,
        "code.function.name": "test_a_message_becomes_a_record_of_the_global_pipeline",
    }
    context = span.get_span_context()
    assert (lr.trace_id, lr.span_id, lr.trace_flags) == (
        context.trace_id,
        context.span_id,
        context.trace_flags,
    )
    assert record.instrumentation_scope.name == __name__
    assert record.resource.attributes["service.name"] == "test"


@pytest.mark.parametrize(
    ("level", "number", "text"),
    [
        ("TRACE", SeverityNumber.TRACE, "TRACE"),
        ("DEBUG", SeverityNumber.DEBUG, "DEBUG"),
        ("INFO", SeverityNumber.INFO, "INFO"),
        ("SUCCESS", SeverityNumber.INFO4, "SUCCESS"),
        ("WARNING", SeverityNumber.WARN, "WARN"),
        ("ERROR", SeverityNumber.ERROR, "ERROR"),
        ("CRITICAL", SeverityNumber.FATAL, "FATAL"),
    ],
)
def test_loguru_levels_map_to_otel_severities(
    records: Records, loguru_handlers: AddHandler, level: str, number: SeverityNumber, text: str
) -> None:
    loguru_handlers(LoguruSink(logger_provider=records.provider), level=0)
    logger.log(level, "level check")
    lr = records.one().log_record
    assert (lr.severity_number, lr.severity_text) == (number, text)


def test_a_custom_level_maps_by_its_number(records: Records, loguru_handlers: AddHandler) -> None:
    with contextlib.suppress(TypeError, ValueError):  # added by an earlier run of this test
        logger.level("NOTICE", no=35)
    loguru_handlers(LoguruSink(logger_provider=records.provider), level=0)
    logger.log("NOTICE", "custom")
    lr = records.one().log_record
    assert (lr.severity_number, lr.severity_text) == (SeverityNumber.WARN4, "NOTICE")


def test_braces_in_a_message_arrive_as_written(
    records: Records, loguru_handlers: AddHandler
) -> None:
    loguru_handlers(LoguruSink(logger_provider=records.provider))
    logger.info("template {user} and {} and {{x}}")  # no arguments: loguru does not format
    logger.info("json {payload}", payload={"a": {1, 2}})
    first, second = records.all()
    assert first.log_record.body == "template {user} and {} and {{x}}"
    assert second.log_record.body == "json {'a': {1, 2}}"
    assert (second.log_record.attributes or {})["payload"] == '{"a": [1, 2]}'


def test_unencodable_extra_values_are_their_repr_counted(
    records: Records, loguru_handlers: AddHandler
) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    sink = LoguruSink(logger_provider=records.provider)
    loguru_handlers(sink)
    logger.bind(thing=Opaque(), fine=[1, 2]).info("odd extra")
    attributes = records.one().log_record.attributes or {}
    assert (attributes["thing"], attributes["fine"]) == ("<Opaque>", (1, 2))
    assert (sink.unencodable, sink.failed) == (1, 0)


def test_an_exception_gives_the_exception_attributes(
    records: Records, loguru_handlers: AddHandler
) -> None:
    loguru_handlers(LoguruSink(logger_provider=records.provider))
    try:
        raise OSError("disk full")
    except OSError:
        logger.exception("write failed")
    lr = records.one().log_record
    attributes = lr.attributes or {}
    assert lr.severity_number is SeverityNumber.ERROR
    assert (attributes["exception.type"], attributes["exception.message"]) == (
        "OSError",
        "disk full",
    )
    assert 'raise OSError("disk full")' in str(attributes["exception.stacktrace"])


def test_contextualize_values_are_attributes(records: Records, loguru_handlers: AddHandler) -> None:
    loguru_handlers(LoguruSink(logger_provider=records.provider))
    with logger.contextualize(request_id="r-1"):
        logger.info("inside")
    assert (records.one().log_record.attributes or {})["request_id"] == "r-1"


def test_the_records_time_is_loguru_s(records: Records, loguru_handlers: AddHandler) -> None:
    times: list[Any] = []
    loguru_handlers(lambda message: times.append(message.record["time"]))
    loguru_handlers(LoguruSink(logger_provider=records.provider))
    logger.info("timed")
    assert records.one().log_record.timestamp == int(times[0].timestamp() * 1_000_000_000)


def test_a_failing_pipeline_never_reaches_the_logging_call(loguru_handlers: AddHandler) -> None:
    class Exploding(LoggerProvider):
        def get_logger(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("pipeline broken")

    sink = LoguruSink(logger_provider=Exploding(shutdown_on_exit=False))
    loguru_handlers(sink, catch=False)  # loguru would otherwise hide a sink's exception
    logger.info("still fine")
    assert sink.failed == 1


def test_a_message_without_a_record_is_counted_not_raised() -> None:
    sink = LoguruSink()
    sink("a plain string, not a loguru message")
    assert sink.failed == 1
