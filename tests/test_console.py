"""The human-readable console output: a trace tree with durations and its log lines."""

from __future__ import annotations

import io
import logging
import os

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otelkit
from otelkit._console import ConsoleTraceExporter, render_log_line, render_trace
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


def _rich_trace(tracer_provider: object) -> None:
    tracer = tracer_provider.get_tracer("console")  # type: ignore[attr-defined]
    with tracer.start_as_current_span("earlier") as earlier:
        pass
    link = trace.Link(earlier.get_span_context(), {"why": "retry of"})
    with tracer.start_as_current_span(
        "job", attributes={"queue": "demo", "payload": "x" * 100}, links=[link]
    ) as span:
        span.add_event("claimed", {"worker": "w1"})


def _job_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("job ["))
    return lines[start:]


def test_normal_verbosity_shows_attributes_events_and_links_compactly(
    memory_telemetry: MemoryTelemetry,
) -> None:
    _rich_trace(memory_telemetry.tracer_provider)
    job = [s for s in memory_telemetry.spans() if s.name == "job"]
    earlier = next(s for s in memory_telemetry.spans() if s.name == "earlier")
    lines = _job_lines(render_trace(job, verbosity="normal"))
    assert "{queue=demo, payload=" + "x" * 59 + "…}" in lines[0]
    assert lines[1] == (
        f"   ↗ link to trace {earlier.context.trace_id:032x} "
        f"span {earlier.context.span_id:016x}  {{why=retry of}}"
    )
    assert lines[2].startswith("   ◆ ") and lines[2].endswith(" claimed  {worker=w1}")


def test_brief_verbosity_shows_names_and_durations_only(
    memory_telemetry: MemoryTelemetry,
) -> None:
    _rich_trace(memory_telemetry.tracer_provider)
    job = [s for s in memory_telemetry.spans() if s.name == "job"]
    lines = _job_lines(render_trace(job, verbosity="brief"))
    assert len(lines) == 1 and "{" not in lines[0]


def test_full_verbosity_cuts_nothing(memory_telemetry: MemoryTelemetry) -> None:
    _rich_trace(memory_telemetry.tracer_provider)
    job = [s for s in memory_telemetry.spans() if s.name == "job"]
    assert "payload=" + "x" * 100 + "}" in render_trace(job, verbosity="full")


def test_the_exporter_reads_its_verbosity_from_the_environment(
    memory_telemetry: MemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTELKIT_CONSOLE_VERBOSITY", "brief")
    out = io.StringIO()
    exporter = ConsoleTraceExporter(out)
    _rich_trace(memory_telemetry.tracer_provider)
    exporter.export(memory_telemetry.spans())
    assert "{" not in out.getvalue() and "link" not in out.getvalue()
    monkeypatch.setenv("OTELKIT_CONSOLE_VERBOSITY", "loud")
    with pytest.raises(ValueError, match="OTELKIT_CONSOLE_VERBOSITY='loud' is not supported"):
        ConsoleTraceExporter(out)


def test_records_from_another_process_show_their_service_and_pid() -> None:
    child = MemoryTelemetry(
        resource=Resource.create({"service.name": "worker", "process.pid": os.getpid() + 1})
    )
    ours = MemoryTelemetry(
        resource=Resource.create({"service.name": "host", "process.pid": os.getpid()})
    )
    for mem in (child, ours):
        with mem.tracer_provider.get_tracer("t").start_as_current_span("work"):
            pass
        mem.logger_provider.get_logger("t").emit(body="hello", severity_text="INFO")
    assert render_trace(child.spans(), ids=False).endswith(f"  [worker pid {os.getpid() + 1}]")
    assert render_log_line(child.logs()[0]).endswith(f"hello  [worker pid {os.getpid() + 1}]")
    assert "[" not in render_trace(ours.spans(), ids=False).replace("[internal]", "")
    assert render_log_line(ours.logs()[0]).endswith("hello")


def test_a_coalescing_summary_reads_its_real_span_not_the_window(
    memory_telemetry: MemoryTelemetry,
) -> None:
    from otelkit.coalesce import (
        COUNT_ATTRIBUTE,
        FIRST_TIMESTAMP_ATTRIBUTE,
        LAST_TIMESTAMP_ATTRIBUTE,
        WINDOW_ATTRIBUTE,
    )

    first = 1_700_000_000_000_000_000
    memory_telemetry.logger_provider.get_logger("t").emit(
        body="flaky upstream",
        severity_text="WARN",
        attributes={
            COUNT_ATTRIBUTE: 67,
            WINDOW_ATTRIBUTE: 10.0,
            FIRST_TIMESTAMP_ATTRIBUTE: first,
            LAST_TIMESTAMP_ATTRIBUTE: first + 3_000_000,
        },
    )
    line = render_log_line(memory_telemetry.logs()[0])
    assert line.endswith("flaky upstream  (x67 over 3.0 ms)")
