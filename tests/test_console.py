"""The human-readable console output: a trace tree with durations and its log lines."""

from __future__ import annotations

import io
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otelkit
from otelkit._console import ConsoleTraceExporter, render_trace
from otelkit.testing import MemoryTelemetry


def _make_trace(mem: MemoryTelemetry) -> None:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    handler = LoggingHandler(logger_provider=mem.logger_provider)
    logger = logging.getLogger("tests.console")
    logger.addHandler(handler)
    logger.propagate = False
    tracer = mem.tracer_provider.get_tracer("console")
    try:
        with tracer.start_as_current_span("request"):
            with tracer.start_as_current_span("load"):
                logger.warning("slow upstream")
            with tracer.start_as_current_span("render") as span:
                span.set_status(trace.Status(trace.StatusCode.ERROR, "boom"))
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_render_trace_nests_children_and_puts_logs_beneath_their_span(
    memory_telemetry: MemoryTelemetry,
) -> None:
    _make_trace(memory_telemetry)
    text = render_trace(memory_telemetry.spans(), memory_telemetry.logs(), ids=False)
    # durations vary: mask them for the snapshot
    import re

    masked = re.sub(r"\d+\.\d+ (ms|s)", "<d>", text)
    masked = re.sub(r"\d\d:\d\d:\d\d\.\d{3}", "<t>", masked)
    assert masked == (
        "request [internal] <d>\n"
        "├─ load [internal] <d>\n"
        "│     · <t> WARN  tests.console: slow upstream\n"
        "└─ render [internal] <d>  ERROR: boom"
    )


def test_console_exporter_prints_a_tree_when_the_local_root_ends(
    memory_telemetry: MemoryTelemetry,
) -> None:
    out = io.StringIO()
    processor = BatchSpanProcessor(ConsoleTraceExporter(out))
    memory_telemetry.tracer_provider.add_span_processor(processor)
    tracer = memory_telemetry.tracer_provider.get_tracer("console")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("child"):
            pass
        processor.force_flush()
        assert out.getvalue() == ""  # held until the root ends
    processor.force_flush()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trace ")
    assert lines[1].startswith("root [internal]")
    assert lines[2].startswith("└─ child [internal]")


def test_console_exporter_through_configure(capsys) -> None:  # type: ignore[no-untyped-def]
    telemetry = otelkit.configure(exporter="console", coalesce_window=False, metric_interval=3600)
    try:
        with trace.get_tracer("c").start_as_current_span("shown"):
            logging.getLogger("tests.console").warning("visible line")
    finally:
        telemetry.shutdown()
    err = capsys.readouterr().err
    assert "shown [internal]" in err
    assert "WARN  tests.console: visible line" in err
