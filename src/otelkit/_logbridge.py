"""The stdlib ``logging`` → OpenTelemetry bridge installed by ``configure()``.

Same record mapping as ``opentelemetry-instrumentation-logging``'s handler (severity via its
``std_to_otel``, ``code.*`` and ``exception.*`` attributes, the active span's context), but
without importing that package's instrumentor machinery (wrapt, asyncio: ~130 ms at start-up,
which a relay child cannot afford) and with loggers cached per name for a cheaper hot path.
"""

from __future__ import annotations

import logging
import threading
import time

from opentelemetry import context as otel_context
from opentelemetry._logs import Logger, LoggerProvider
from opentelemetry.util.types import AnyValue

from otelkit._errors import report_internal_error
from otelkit._levels import exception_keywords, std_to_otel

__all__ = ["OtelLogHandler"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RESERVED = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}


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
            attributes: dict[str, AnyValue] = {
                key: value for key, value in vars(record).items() if key not in _RESERVED
            }
            attributes["code.file.path"] = record.pathname
            attributes["code.function.name"] = record.funcName
            attributes["code.line.number"] = record.lineno
            exception = record.exc_info[1] if record.exc_info else None
            body = self.format(record) if self.formatter else record.getMessage()
            self._logger(record.name).emit(
                timestamp=int(record.created * 1e9),
                observed_timestamp=time.time_ns(),
                context=otel_context.get_current(),
                severity_number=std_to_otel(record.levelno),
                severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
                body=body,
                attributes=attributes,
                **exception_keywords(exception, attributes),
            )
        except Exception as exc:  # noqa: BLE001 - logging must never fail the application
            report_internal_error("log bridge", exc)
        finally:
            local.emitting = False

    def flush(self) -> None:
        """Nothing is buffered here; the pipeline's processors flush on their own."""
