"""The ``otelkit`` command: ``--version``, ``doctor``, ``demo`` and ``jobs ...``."""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
import time
import urllib.parse
from collections.abc import Sequence

from otelkit._config import SIGNALS, Settings, resolve_settings
from otelkit._version import __version__

__all__ = ["build_parser", "main"]

# Modules that add subcommands through register(subparsers).
_COMMAND_MODULES = ("otelkit.demo", "otelkit.jobs._cli")


def _probe(url: str, timeout: float = 1.0) -> str:
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or "localhost"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return f"unreachable ({exc.strerror or exc})"
    return f"answers ({(time.monotonic() - start) * 1000:.1f} ms)"


def _doctor_rows(settings: Settings) -> list[tuple[str, str, str]]:
    src = settings.sources
    rows = [
        ("service_name", settings.service_name, src.get("service_name", "default")),
        ("service_version", str(settings.service_version), src.get("service_version", "default")),
        ("environment", str(settings.environment), src.get("environment", "default")),
        (
            "resource_attributes",
            str(dict(settings.resource_attributes)),
            src.get("resource_attributes", "default"),
        ),
        ("exporter", settings.exporter, src.get("exporter", "default")),
        ("sampler", f"{settings.sampler} ({settings.sample_ratio})", src.get("sampler", "default")),
        ("metric_interval", f"{settings.metric_interval} s", src.get("metric_interval", "default")),
        (
            "shutdown_timeout",
            f"{settings.shutdown_timeout} s",
            src.get("shutdown_timeout", "default"),
        ),
        ("logging_level", str(settings.logging_level), src.get("logging_level", "default")),
        ("coalesce_window", str(settings.coalesce_window), src.get("coalesce_window", "default")),
        ("sdk_disabled", str(settings.disabled), "OTEL_SDK_DISABLED"),
    ]
    for signal in SIGNALS:
        target = settings.targets[signal]
        headers = ",".join(sorted(target.headers)) or "-"
        rows.append(
            (
                f"{signal} endpoint",
                f"{target.endpoint} [{target.protocol}, timeout {target.timeout} s, "
                f"{target.compression}, headers: {headers}]",
                src.get("endpoint", "default"),
            )
        )
    return rows


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _doctor(args: argparse.Namespace) -> int:
    try:
        settings = resolve_settings(endpoint=args.endpoint, protocol=args.protocol)
    except ValueError as exc:
        print(f"otelkit doctor: {exc}", file=sys.stderr)
        return 2
    print(_table([("option", "value", "from"), *_doctor_rows(settings)]))
    if settings.exporter != "otlp":
        print(f"\nexporter is {settings.exporter!r}: no endpoint to check")
        return 0
    print()
    failures = 0
    for endpoint in sorted({settings.targets[s].endpoint for s in SIGNALS}):
        verdict = _probe(endpoint)
        failures += verdict.startswith("unreachable")
        print(f"{endpoint}: {verdict}")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``otelkit`` command."""
    parser = argparse.ArgumentParser(
        prog="otelkit", description="OpenTelemetry for services that do background work."
    )
    parser.add_argument("--version", action="version", version=f"otelkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    doctor = sub.add_parser("doctor", help="show the resolved configuration and probe the endpoint")
    doctor.add_argument("--endpoint", help="OTLP endpoint (default: from OTEL_* or localhost)")
    doctor.add_argument("--protocol", choices=["grpc", "http/protobuf"])
    doctor.set_defaults(func=_doctor)
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # a capability that is not installed adds no command
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``otelkit`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code: int = func(args)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a command line reports errors, it does not dump tracebacks
        if os.environ.get("OTELKIT_DEBUG"):
            raise
        text = str(exc).strip()
        message = text.splitlines()[0] if text else ""
        print(
            f"otelkit {args.command}: {type(exc).__name__}: {message}\n"
            "(set OTELKIT_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    return code
