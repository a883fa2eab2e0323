"""StructlogProcessor with the real structlog: each event becomes one OTel log record."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import sys
from typing import Any

import pytest
import structlog
from opentelemetry import trace
from opentelemetry._logs import NoOpLoggerProvider, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider

import otelkit
from otelkit.bridges import StructlogProcessor

from .conftest import Records


def _configure(processor: StructlogProcessor, *before: Any, after: Any = None) -> Any:
    """structlog with ``before``, the bridge, then a LogCapture (what the renderer gets)."""
    capture = structlog.testing.LogCapture()
    structlog.configure(
        processors=[*before, processor, *([after] if after else []), capture],
        logger_factory=structlog.PrintLoggerFactory(file=io.StringIO()),
    )
    return capture


def _line() -> int:
    """The line number of the caller's next line."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


def test_an_event_becomes_a_record_of_the_global_pipeline(
    otelkit_memory: otelkit.Telemetry,
) -> None:
    _configure(StructlogProcessor(), structlog.processors.add_log_level)
    log = structlog.get_logger()
    with trace.get_tracer("t").start_as_current_span("checkout") as span:
        line = _line()
        log.warning("payment declined", user="ada", amount=12.5, tries=3, tags=["a", "b"])
    otelkit_memory.force_flush()
    assert otelkit_memory.memory is not None
    (record,) = otelkit_memory.memory.logs.get_finished_logs()
    lr = record.log_record
    assert lr.body == "payment declined"
    assert lr.severity_number is SeverityNumber.WARN
    assert lr.severity_text == "WARN"
    assert dict(lr.attributes or {}) == {
        "user": "ada",
        "amount": 12.5,
        "tries": 3,
        "tags": ("a", "b"),
        "code.file.path": __file__,
        "code.line.number": line,
        "code.function.name": "test_an_event_becomes_a_record_of_the_global_pipeline",
    }
    context = span.get_span_context()
    assert (lr.trace_id, lr.span_id, lr.trace_flags) == (
        context.trace_id,
        context.span_id,
        context.trace_flags,
    )
    assert record.instrumentation_scope.name == __name__  # the calling module
    assert record.resource.attributes["service.name"] == "test"


def test_the_event_dict_goes_on_unchanged_and_the_renderer_still_prints_it(
    records: Records,
) -> None:
    out = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            StructlogProcessor(logger_provider=records.provider),
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=out),
    )
    structlog.get_logger().info("cache warmed", keys=3, nested={"a": [1, 2]})
    assert json.loads(out.getvalue()) == {
        "event": "cache warmed",
        "keys": 3,
        "level": "info",
        "nested": {"a": [1, 2]},
    }
    assert records.one().log_record.body == "cache warmed"


def test_the_processor_returns_the_very_same_dict() -> None:
    processor = StructlogProcessor(logger_provider=NoOpLoggerProvider())
    event = {"event": "x", "n": 1}
    assert processor(None, "info", event) is event
    assert event == {"event": "x", "n": 1}


def test_nested_values_are_json_and_unencodable_ones_their_repr_counted(
    records: Records,
) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    cycle: list[Any] = []
    cycle.append(cycle)
    processor = StructlogProcessor(logger_provider=records.provider)
    capture = _configure(processor)
    values = {
        "order": {"id": 7, "items": [{"sku": "x", "qty": 2}]},
        "mixed": [1, "a"],
        "nothing": None,
        "opaque": Opaque(),
        "broken": Broken(),
        "cycle": cycle,
        "inside": {"o": Opaque()},
        "huge": 2**80,
    }
    structlog.get_logger().info("odd values", **values)
    attributes = dict(records.one().log_record.attributes or {})
    assert attributes["order"] == '{"id": 7, "items": [{"sku": "x", "qty": 2}]}'
    assert attributes["mixed"] == '[1, "a"]'
    assert attributes["nothing"] == "null"
    assert attributes["opaque"] == "<Opaque>"
    assert attributes["broken"] == "<unrepresentable Broken>"
    assert attributes["cycle"] == "[[...]]"
    assert attributes["inside"] == '{"o": "<Opaque>"}'
    assert attributes["huge"] == str(2**80)
    assert processor.unencodable == 4  # opaque, broken, cycle, the object inside
    assert processor.failed == 0
    assert capture.entries[0]["opaque"] is values["opaque"]  # passed on untouched


@pytest.mark.parametrize(
    ("method", "number", "text"),
    [
        ("debug", SeverityNumber.DEBUG, "DEBUG"),
        ("info", SeverityNumber.INFO, "INFO"),
        ("warning", SeverityNumber.WARN, "WARN"),
        ("warn", SeverityNumber.WARN, "WARN"),
        ("error", SeverityNumber.ERROR, "ERROR"),
        ("exception", SeverityNumber.ERROR, "ERROR"),
        ("critical", SeverityNumber.FATAL, "FATAL"),
        ("fatal", SeverityNumber.FATAL, "FATAL"),
    ],
)
def test_levels_map_as_the_stdlib_bridge_maps_them(
    records: Records, method: str, number: SeverityNumber, text: str
) -> None:
    # structlog's stdlib BoundLogger has every one of these methods (LogCapture, last in
    # the chain, keeps the event from reaching stdlib logging).
    _configure(StructlogProcessor(logger_provider=records.provider))
    structlog.configure(
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    getattr(structlog.get_logger("levels"), method)("level check")
    lr = records.one().log_record
    assert (lr.severity_number, lr.severity_text) == (number, text)
    assert records.one().instrumentation_scope.name == "levels"  # the stdlib logger's name


def test_the_level_key_wins_over_the_method_name(records: Records) -> None:
    processor = StructlogProcessor(logger_provider=records.provider)
    processor(None, "msg", {"event": "custom", "level": "error"})
    processor(None, "msg", {"event": "numeric", "level": 25})
    processor(None, "msg", {"event": "unknown", "level": "notice"})
    got = [(r.log_record.severity_number, r.log_record.severity_text) for r in records.all()]
    assert got == [
        (SeverityNumber.ERROR, "ERROR"),
        (SeverityNumber.INFO4, "LEVEL 25"),
        (SeverityNumber.UNSPECIFIED, "NOTICE"),
    ]


def test_exc_info_gives_the_exception_attributes(records: Records) -> None:
    _configure(StructlogProcessor(logger_provider=records.provider))
    try:
        raise ValueError("bad input")
    except ValueError:
        structlog.get_logger().exception("import failed")
    attributes = records.one().log_record.attributes or {}
    assert attributes["exception.type"] == "ValueError"
    assert attributes["exception.message"] == "bad input"
    assert 'raise ValueError("bad input")' in str(attributes["exception.stacktrace"])
    assert "exc_info" not in attributes


def test_an_exception_object_as_exc_info_is_used_outside_the_except_block(
    records: Records,
) -> None:
    error = KeyError("sku")
    _configure(StructlogProcessor(logger_provider=records.provider))
    structlog.get_logger().error("lookup failed", exc_info=error)
    attributes = records.one().log_record.attributes or {}
    assert (attributes["exception.type"], attributes["exception.message"]) == ("KeyError", "'sku'")


def test_an_exception_rendered_by_format_exc_info_is_read_back(records: Records) -> None:
    _configure(
        StructlogProcessor(logger_provider=records.provider),
        structlog.processors.format_exc_info,
    )
    try:
        raise ConnectionError("reset by peer")
    except ConnectionError:
        structlog.get_logger().exception("upstream failed")
    attributes = records.one().log_record.attributes or {}
    assert attributes["exception.type"] == "ConnectionError"
    assert attributes["exception.message"] == "reset by peer"
    assert str(attributes["exception.stacktrace"]).startswith("Traceback (most recent call last)")
    assert "exception" not in attributes


def test_an_exception_from_dict_tracebacks_is_read_back(records: Records) -> None:
    _configure(
        StructlogProcessor(logger_provider=records.provider),
        structlog.processors.dict_tracebacks,
    )
    try:
        raise TimeoutError("slow")
    except TimeoutError:
        structlog.get_logger().exception("timed out")
    attributes = records.one().log_record.attributes or {}
    assert (attributes["exception.type"], attributes["exception.message"]) == (
        "TimeoutError",
        "slow",
    )
    assert json.loads(str(attributes["exception.stacktrace"]))[0]["exc_type"] == "TimeoutError"


def test_callsite_parameter_adder_keys_become_the_code_attributes(records: Records) -> None:
    P = structlog.processors.CallsiteParameter
    _configure(
        StructlogProcessor(logger_provider=records.provider),
        structlog.processors.CallsiteParameterAdder(
            [P.PATHNAME, P.LINENO, P.FUNC_NAME, P.THREAD_NAME]
        ),
    )
    line = _line()
    structlog.get_logger().info("with callsite keys")
    attributes = dict(records.one().log_record.attributes or {})
    assert attributes == {
        "code.file.path": __file__,
        "code.line.number": line,
        "code.function.name": "test_callsite_parameter_adder_keys_become_the_code_attributes",
        "thread_name": "MainThread",
    }


def test_async_methods_find_their_call_site_and_span(records: Records) -> None:
    _configure(StructlogProcessor(logger_provider=records.provider))
    log = structlog.get_logger()
    tracer_provider = otelkit.configure(exporter="none").tracer_provider
    assert tracer_provider is not None

    async def handler() -> tuple[int, int]:
        with tracer_provider.get_tracer("t").start_as_current_span("request") as span:
            line = _line()
            await log.ainfo("async event", path="/x")
            return line, span.get_span_context().span_id

    try:
        line, span_id = asyncio.run(handler())
    finally:
        otelkit.current().shutdown()  # type: ignore[union-attr]
    lr = records.one().log_record
    assert lr.attributes is not None
    assert lr.attributes["code.file.path"] == __file__
    assert lr.attributes["code.line.number"] == line
    assert lr.attributes["code.function.name"] == "handler"
    assert lr.span_id == span_id


def test_callsite_ignores_skip_a_wrapper_module(records: Records) -> None:
    processor = StructlogProcessor(logger_provider=records.provider, callsite_ignores=[__name__])
    frame = sys._getframe()
    processor(None, "info", {"event": "from a wrapper"})
    attributes = records.one().log_record.attributes or {}
    assert attributes["code.file.path"] != __file__  # pytest's frame, the first outside
    assert frame.f_code.co_name not in str(attributes.get("code.function.name"))


def test_scope_comes_from_the_logger_key(records: Records) -> None:
    _configure(
        StructlogProcessor(logger_provider=records.provider),
        structlog.stdlib.add_logger_name,
    )
    structlog.configure(logger_factory=structlog.stdlib.LoggerFactory())
    structlog.get_logger("billing.jobs").info("named")
    record = records.one()
    assert record.instrumentation_scope.name == "billing.jobs"
    assert "logger" not in (record.log_record.attributes or {})


def test_the_logger_key_wins_over_the_bound_logger_s_name(records: Records) -> None:
    class Named:
        name = "from.the.logger"

    processor = StructlogProcessor(logger_provider=records.provider)
    processor(Named(), "info", {"event": "a", "logger": "from.the.key"})
    processor(Named(), "info", {"event": "b"})
    assert [r.instrumentation_scope.name for r in records.all()] == [
        "from.the.key",
        "from.the.logger",
    ]


def test_a_numeric_timestamp_is_the_records_time(records: Records) -> None:
    _configure(
        StructlogProcessor(logger_provider=records.provider),
        structlog.processors.TimeStamper(fmt=None),
    )
    structlog.get_logger().info("stamped")
    capture_time = records.one().log_record.timestamp
    assert capture_time is not None
    assert abs(capture_time - records.one().log_record.observed_timestamp) < 5e9  # type: ignore[operator]
    assert "timestamp" not in (records.one().log_record.attributes or {})


def test_placed_after_a_renderer_the_rendered_text_is_the_body(records: Records) -> None:
    processor = StructlogProcessor(logger_provider=records.provider)
    assert processor(None, "warning", "rendered line") == "rendered line"
    lr = records.one().log_record
    assert (lr.body, lr.severity_number) == ("rendered line", SeverityNumber.WARN)


def test_a_failing_pipeline_never_reaches_the_logging_call() -> None:
    class Exploding(LoggerProvider):
        def get_logger(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("pipeline broken")

    processor = StructlogProcessor(logger_provider=Exploding(shutdown_on_exit=False))
    capture = _configure(processor)
    structlog.get_logger().info("still logged")
    assert capture.entries[0]["event"] == "still logged"
    assert processor.failed == 1


def test_a_non_string_event_becomes_its_text(records: Records) -> None:
    processor = StructlogProcessor(logger_provider=records.provider)
    processor(None, "info", {"event": {"k": 1}})
    processor(None, "info", {"no_event": True})
    assert [r.log_record.body for r in records.all()] == ["{'k': 1}", ""]
