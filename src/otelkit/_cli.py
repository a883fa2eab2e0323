"""The ``otelkit`` command: ``--version``, ``doctor``, ``demo`` and ``jobs ...``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import socket
import sys
import time
import urllib.parse
import warnings
from collections.abc import Sequence

from otelkit._config import SIGNALS, Settings, resolve_settings
from otelkit._version import __version__

__all__ = ["build_parser", "main"]

# Modules that add subcommands through register(subparsers).
_COMMAND_MODULES = ("otelkit._demo", "otelkit.jobs._cli")


def _probe(host: str, port: int, timeout: float = 1.0) -> str:
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return f"unreachable ({exc.strerror or exc})"
    return f"answers ({(time.monotonic() - start) * 1000:.1f} ms)"


def _seconds(value: float | None) -> str:
    return "off" if value is None else f"{float(value)} s"


def _sampling(settings: Settings) -> str:
    options = settings.sampling
    if options is None:
        return "off"
    return (
        f"probability {options.probability:g}, kept whole when failed or >= "
        f"{options.duration_threshold:g} s"
    )


def _doctor_rows(settings: Settings) -> list[tuple[str, str, str]]:
    """``(option, value with its unit, where it came from)`` for every option."""
    src = settings.sources

    def row(option: str, value: str, key: str | None = None) -> tuple[str, str, str]:
        return (option, value, src.get(key or option, "default"))

    level = settings.logging_level
    attrs = ",".join(f"{k}={v}" for k, v in sorted(settings.resource_attributes.items()))
    rows = [
        row("service_name", settings.service_name),
        row("service_version", settings.service_version or "-"),
        row("environment", settings.environment or "-"),
        row("resource_attributes", attrs or "-"),
        row("exporter", settings.exporter),
        row("sampler", settings.sampler),
        row("sample_ratio", str(float(settings.sample_ratio))),
        row("metric_interval", _seconds(settings.metric_interval)),
        row("shutdown_timeout", _seconds(settings.shutdown_timeout)),
        row("logging_level", "off" if level is None else logging.getLevelName(level)),
        row("coalesce_window", _seconds(settings.coalesce_window)),
        row("relay", "on" if settings.relay else "off"),
        row("scrubbing", "off" if settings.scrubbing is None else "on"),
        row("sampling", _sampling(settings)),
    ]
    if os.environ.get("OTEL_SDK_DISABLED", "").strip():
        rows.append(("OTEL_SDK_DISABLED", str(settings.disabled).lower(), "OTEL_SDK_DISABLED"))
    for signal in SIGNALS:
        target = settings.targets[signal]
        headers = ",".join(sorted(target.headers)) or "-"
        rows.append(
            (
                f"endpoint ({signal})",
                f"{target.endpoint} [{target.protocol}, timeout {float(target.timeout)} s, "
                f"{target.compression}, headers: {headers}]",
                src.get(f"{signal}_endpoint", src.get("endpoint", "default")),
            )
        )
    return rows


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


_NEXT_STEPS = """
Nothing answers there. Next step, one of:
  docker compose up -d                  start this repository's Collector and Jaeger
                                        (then run otelkit doctor again)
  otelkit doctor --endpoint URL         check a Collector elsewhere; configure it with
                                        endpoint=URL or OTEL_EXPORTER_OTLP_ENDPOINT=URL
  OTELKIT_EXPORTER=console              no Collector: print traces and logs to the terminal"""


def _doctor(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            settings = resolve_settings(endpoint=args.endpoint, protocol=args.protocol)
        except ValueError as exc:
            print(f"otelkit doctor: {exc}", file=sys.stderr)
            return 2
    print(_table([("option", "value", "from"), *_doctor_rows(settings)]))
    for warning in caught:
        print(f"\nwarning: {warning.message}")
    if settings.exporter != "otlp":
        print(f"\nexporter is {settings.exporter!r}: no endpoint to check")
        return 0
    print()
    by_address: dict[tuple[str, int], list[str]] = {}
    for signal in SIGNALS:
        parsed = urllib.parse.urlsplit(settings.targets[signal].endpoint)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        by_address.setdefault((parsed.hostname or "localhost", port), []).append(signal)
    failures = 0
    for (host, port), signals in by_address.items():
        verdict = _probe(host, port)
        failures += verdict.startswith("unreachable")
        print(f"{host}:{port} ({', '.join(signals)}): {verdict}")
    if failures:
        print(_NEXT_STEPS)
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
