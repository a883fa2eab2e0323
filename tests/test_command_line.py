"""The otelkit command: --version and doctor."""

from __future__ import annotations

import subprocess
import sys

import pytest

from otelkit import __version__
from otelkit._cli import main
from otelkit._testsupport import free_port
from otelkit.testing import OtlpSink


def test_version_via_python_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "otelkit", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"otelkit {__version__}"


def test_doctor_shows_resolved_settings_and_a_reachable_endpoint(
    otlp_sink: OtlpSink, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "doctor-svc")
    assert main(["doctor", "--endpoint", otlp_sink.endpoint]) == 0
    out = capsys.readouterr().out
    assert "doctor-svc" in out and "OTEL_SERVICE_NAME" in out
    assert "scrubbing" in out and "sampling" in out
    assert f"{otlp_sink.endpoint}/v1/traces" in out
    assert "answers" in out


def test_doctor_reports_an_unreachable_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--endpoint", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "unreachable" in capsys.readouterr().out


def test_doctor_rejects_a_malformed_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--endpoint", "http://:99"]) == 2
    assert "is not a valid endpoint" in capsys.readouterr().err


def test_a_failing_command_reports_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from otelkit import _cli as cli

    def boom(args: argparse.Namespace) -> int:
        raise RuntimeError("the database went away\nmore detail")

    monkeypatch.setattr(cli, "_doctor", boom)
    monkeypatch.delenv("OTELKIT_DEBUG", raising=False)
    assert cli.main(["doctor"]) == 1
    err = capsys.readouterr().err
    assert "otelkit doctor: RuntimeError: the database went away" in err
    assert "Traceback" not in err


def test_doctor_suggests_the_next_step_when_nothing_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    assert main(["doctor", "--endpoint", f"http://127.0.0.1:{port}"]) == 1
    out = capsys.readouterr().out
    assert f"127.0.0.1:{port} (traces, metrics, logs): unreachable" in out
    assert "docker compose up -d" in out
    assert "--endpoint URL" in out
    assert "OTELKIT_EXPORTER=console" in out


def test_doctor_table_shows_units_level_names_and_no_unset_variables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.delenv("OTELKIT_EXPORTER", raising=False)
    monkeypatch.setenv("OTELKIT_LOGGING_LEVEL", "WARNING")
    main(["doctor", "--endpoint", f"http://127.0.0.1:{free_port()}"])
    rows = {
        line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line
    }
    assert rows["coalesce_window"][:2] == ["10.0", "s"]
    assert rows["shutdown_timeout"][:2] == ["3.0", "s"]
    assert rows["logging_level"] == ["WARNING", "OTELKIT_LOGGING_LEVEL"]
    assert "sdk_disabled" not in rows and "OTEL_SDK_DISABLED" not in rows


def test_doctor_names_the_variable_a_per_signal_endpoint_came_from(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTELKIT_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", f"http://127.0.0.1:{free_port()}/l")
    main(["doctor"])
    (logs_row,) = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("endpoint (logs)")
    ]
    assert logs_row.endswith("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")


def test_doctor_shows_a_port_protocol_contradiction(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTELKIT_EXPORTER", raising=False)
    main(["doctor", "--endpoint", "http://127.0.0.1:4317", "--protocol", "http/protobuf"])
    assert "warning: otelkit.configure: endpoint='http://127.0.0.1:4317' is port 4317" in (
        capsys.readouterr().out
    )
