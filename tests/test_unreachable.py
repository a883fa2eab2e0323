"""Without a Collector: force_flush says so once and returns, and the SDK's chatter stays off
stderr while otelkit's own lines stay on it, each on a line of its own."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opentelemetry import trace

import otelkit
from otelkit._testsupport import free_port
from otelkit._unreachable import ExporterNoiseFilter, refusing
from otelkit.testing import OtlpSink


def _record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


@pytest.fixture
def closed_port_telemetry(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in list(os.environ):
        if name.startswith(("OTEL_", "OTELKIT_")):
            monkeypatch.delenv(name)
    telemetry = otelkit.configure(
        service_name="nobody-home",
        endpoint=f"http://127.0.0.1:{free_port()}",
        coalesce_window=False,
        logging_level=None,
        shutdown_timeout=1.0,
    )
    yield telemetry
    telemetry.shutdown()


def test_force_flush_with_nothing_listening_returns_false_within_its_bound(
    closed_port_telemetry: otelkit.Telemetry,
) -> None:
    with trace.get_tracer("t").start_as_current_span("lost"):
        pass
    started = time.monotonic()
    assert closed_port_telemetry.force_flush(timeout=5.0) is False
    assert time.monotonic() - started < 5.0


def test_force_flush_says_once_on_its_own_line_that_nothing_answered(
    closed_port_telemetry: otelkit.Telemetry, capsys: pytest.CaptureFixture[str]
) -> None:
    closed_port_telemetry.force_flush(timeout=2.0)
    closed_port_telemetry.force_flush(timeout=2.0)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "nothing answers" in line]
    assert len(lines) == 1
    assert lines[0].startswith("otelkit: force_flush: nothing answers at 127.0.0.1:")
    assert "docker compose up -d" in lines[0] and "OTELKIT_EXPORTER=console" in lines[0]


def test_force_flush_to_a_listening_endpoint_flushes(
    otlp_sink: OtlpSink, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(("OTEL_", "OTELKIT_")):
            monkeypatch.delenv(name)
    telemetry = otelkit.configure(
        service_name="somebody-home",
        endpoint=otlp_sink.endpoint,
        coalesce_window=False,
        logging_level=None,
    )
    try:
        with trace.get_tracer("t").start_as_current_span("arrives"):
            pass
        assert telemetry.force_flush(timeout=10.0) is True
        assert [s.name for _, s in otlp_sink.spans()] == ["arrives"]
        assert "nothing answers" not in capsys.readouterr().err
    finally:
        telemetry.shutdown()


def test_refusing_names_closed_ports_and_not_open_ones(otlp_sink: OtlpSink) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1/traces"
    found = refusing([closed, f"{otlp_sink.endpoint}/v1/traces", closed], timeout=1.0)
    assert list(found) == [closed.split("/")[2]]
    assert found[closed.split("/")[2]] == "connection refused"


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        (
            "Transient error %s encountered while exporting %s batch, retrying in %.2fs.",
            ("x", "spans", 1.0),
        ),
        ("Shutdown in progress, aborting retry.", ()),
        ("Exporter already shutdown, ignoring batch", ()),
        ("Failed to export %s batch due to timeout, max retries or shutdown.", ("spans",)),
        (
            "Failed to export %s to %s, error code: %s, error details: %s",
            ("traces", "localhost:4317", "StatusCode.UNAVAILABLE", "refused"),
        ),
    ],
)
def test_the_exporters_retry_chatter_is_filtered(msg: str, args: tuple[object, ...]) -> None:
    record = _record("opentelemetry.exporter.otlp.common.http", logging.WARNING, msg, *args)
    assert ExporterNoiseFilter().filter(record) is False


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        ("Failed to export %s batch code: %s, reason: %s", ("spans", 401, "Unauthorized")),
        (
            "Dropping span batch: serialized size %d bytes exceeds max_request_size %d bytes.",
            (9, 1),
        ),
        (
            "Failed to export %s to %s, error code: %s, error details: %s",
            ("traces", "localhost:4317", "StatusCode.UNAUTHENTICATED", "no token"),
        ),
    ],
)
def test_exporter_records_that_say_something_else_pass(msg: str, args: tuple[object, ...]) -> None:
    record = _record("opentelemetry.exporter.otlp.common.http", logging.ERROR, msg, *args)
    assert ExporterNoiseFilter().filter(record) is True


_SCRIPT = """
import logging
from opentelemetry import trace
import otelkit

tel = otelkit.configure(service_name="nobody-home", endpoint="http://127.0.0.1:{port}",
                        shutdown_timeout=2.0)
for i in range(20):
    with trace.get_tracer("t").start_as_current_span("lost"):
        logging.getLogger("app").warning("lost %d", i)
print("flushed", tel.force_flush(timeout=3.0), flush=True)
tel.shutdown()
logging.getLogger("otelkit").warning("otelkit: our own line stays")  # no handler: stderr
"""


def test_without_a_collector_stderr_has_otelkit_lines_only(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(_SCRIPT.format(port=free_port()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "flushed False"
    lines = result.stderr.splitlines()
    assert lines, "otelkit said nothing"
    assert all(line.startswith("otelkit:") for line in lines), result.stderr
    assert sum("nothing answers" in line for line in lines) == 1
    assert any(line.startswith("otelkit: nothing listens at") for line in lines)
    assert "otelkit: our own line stays" in lines
