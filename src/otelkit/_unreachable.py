"""When nothing answers at the OTLP endpoint: a quick probe, one plain stderr line, and the
SDK exporters' retry chatter kept off the user's stderr (otelkit reports the failure itself:
this line, the drop report, ``Telemetry.export_counts()``)."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import urllib.parse
from collections.abc import Iterable

__all__ = [
    "EXPORTER_LOGGERS",
    "ExporterNoiseFilter",
    "quiet_exporter_loggers",
    "refusing",
    "say",
]

EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc._log_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
)
"""The loggers of the SDK's OTLP exporters (their module loggers)."""

_CHATTER = (
    "Transient error",  # a retry is coming (HTTP and gRPC)
    "Shutdown in progress, aborting retry",
    "Exporter already shutdown",
    "OTLP client already shutdown",
    "Failed to export %s batch due to timeout, max retries or shutdown",  # HTTP, gave up
)
_UNANSWERED_GRPC = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


class ExporterNoiseFilter(logging.Filter):
    """Drops the exporters' retry and shutdown chatter, and their final "failed" line when
    the cause is that nothing answered; every other exporter record (a 401, a payload too
    large, an encoding error) passes. ``OTELKIT_DEBUG=1`` lets everything pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if os.environ.get("OTELKIT_DEBUG"):
            return True
        template = str(record.msg)
        if template.startswith(_CHATTER):
            return False
        if template.startswith("Failed to export %s to %s, error code"):  # gRPC, gave up
            return not any(
                code in str(arg) for arg in record.args or () for code in _UNANSWERED_GRPC
            )
        return True


_FILTER = ExporterNoiseFilter()
_installed = False
_install_lock = threading.Lock()


def quiet_exporter_loggers() -> None:
    """Put :class:`ExporterNoiseFilter` on the SDK exporters' loggers (once per process)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(_FILTER)
        _installed = True


def say(text: str) -> None:
    """Write ``text`` to stderr as one line in one write, so that no other thread's output
    lands in the middle of it."""
    try:
        sys.stderr.write(text.rstrip("\n") + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # closed or missing stderr: nothing to do
        pass


def _host_port(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    return parsed.hostname or "localhost", parsed.port or (443 if parsed.scheme == "https" else 80)


def refusing(urls: Iterable[str], timeout: float) -> dict[str, str]:
    """``{"host:port": reason}`` of the endpoints where nothing accepts a connection
    (refused, no such host). A connection that merely times out is not counted: a slow
    Collector is still a Collector, and the caller's own bound applies."""
    found: dict[str, str] = {}
    for host, port in dict.fromkeys(_host_port(url) for url in urls):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except socket.gaierror:
            found[f"{host}:{port}"] = "no such host"
        except TimeoutError:
            continue
        except OSError as exc:
            found[f"{host}:{port}"] = (exc.strerror or type(exc).__name__).lower()
    return found
