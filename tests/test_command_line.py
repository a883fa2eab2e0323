"""The otelkit command: --version and doctor."""

from __future__ import annotations

import subprocess
import sys

import pytest

from otelkit import __version__
from otelkit.cli import main
from otelkit.testing import OtlpSink, free_port


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

    from otelkit import cli

    def boom(args: argparse.Namespace) -> int:
        raise RuntimeError("the database went away\nmore detail")

    monkeypatch.setattr(cli, "_doctor", boom)
    monkeypatch.delenv("OTELKIT_DEBUG", raising=False)
    assert cli.main(["doctor"]) == 1
    err = capsys.readouterr().err
    assert "otelkit doctor: RuntimeError: the database went away" in err
    assert "Traceback" not in err
