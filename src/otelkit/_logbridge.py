"""The stdlib ``logging`` → OpenTelemetry bridge installed by ``configure()``.

Records are mapped as everywhere in otelkit (:mod:`otelkit._logmapping`: severity via
``std_to_otel``, ``code.*`` and ``exception.*`` attributes, the active span's context), without
importing ``opentelemetry-instrumentation-logging``'s instrumentor machinery (wrapt, asyncio:
~130 ms at start-up) and with loggers cached per name for a cheaper hot path.
"""

from __future__ import annotations

import logging
import threading
import time

from opentelemetry import context as otel_context
from opentelemetry._logs import Logger, LoggerProvider

from otelkit._errors import report_internal_error
from otelkit._levels import std_to_otel
from otelkit._logmapping import message, record_attributes, severity_text

__all__ = ["OtelLogHandler"]


class OtelLogHandler(logging.Handler):
    """A ``logging.Handler`` that emits every record as an OpenTelemetry log record.

    Never raises into the caller and never re-enters itself (a log call made while
    emitting, e.g. by an exporter, is dropped rather than looped).
    """

    def __init__(self, logger_provider: LoggerProvider, level: int = logging.NOTSET) -> None:
        super().__init__(level=level)
        self._provider = logger_provider
        self._loggers: dict[str, Logger] = {}
        self._local = threading.local()

    def _logger(self, name: str) -> Logger:
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = self._provider.get_logger(name)
        return logger

    def emit(self, record: logging.LogRecord) -> None:
        local = self._local
        if getattr(local, "emitting", False):
            return
        local.emitting = True
        try:
            attributes, event_name = record_attributes(record)
            body = self.format(record) if self.formatter else message(record)
            self._logger(record.name).emit(
                timestamp=int(record.created * 1e9),
                observed_timestamp=time.time_ns(),
                context=otel_context.get_current(),
                severity_number=std_to_otel(record.levelno),
                severity_text=severity_text(record.levelname),
                body=body,
                attributes=attributes,
                event_name=event_name,
            )
        except Exception as exc:  # noqa: BLE001 - logging must never fail the application
            report_internal_error("log bridge", exc)
        finally:
            local.emitting = False

    def flush(self) -> None:
        """Nothing is buffered here; the pipeline's processors flush on their own."""
