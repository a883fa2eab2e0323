"""What both bridges share: severity mapping, exception fields, and the emitting path.

Records go to the global ``LoggerProvider`` (the one ``otelkit.configure()`` installs, which
in a relay child is the relay pipeline) unless a provider is given. Loggers are cached per
scope name and the cache is dropped when the global provider changes (a reconfiguration).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import _logs
from opentelemetry import context as otel_context
from opentelemetry._logs import Logger, LoggerProvider, NoOpLoggerProvider, SeverityNumber
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.util.types import AnyValue

from otelkit._errors import report_internal_error
from otelkit._levels import std_to_otel
from otelkit._logmapping import add_exception
from otelkit.bridges._values import Encoder

__all__ = [
    "CODE_FILE_PATH",
    "CODE_FUNCTION_NAME",
    "CODE_LINE_NUMBER",
    "Emitter",
    "exception_from_text",
    "severity_of_number",
]

CODE_FILE_PATH = "code.file.path"
CODE_LINE_NUMBER = "code.line.number"
CODE_FUNCTION_NAME = "code.function.name"
_EXCEPTION_TYPE = "exception.type"
_EXCEPTION_MESSAGE = "exception.message"
_EXCEPTION_STACKTRACE = "exception.stacktrace"

# Severity text as otelkit's stdlib bridge writes it (OTel's short names).
_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}
# The last line of a Python traceback: "pkg.Type: message" or "Type".
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?:: (.*))?$", re.DOTALL)


def severity_of_number(levelno: int, name: str) -> tuple[SeverityNumber, str]:
    """A stdlib-style level number and its name as OTel severity number and text.

    Numbers from 10 up map as OpenTelemetry's logging bridge maps stdlib levels
    (``std_to_otel``); 1 to 9 (loguru's TRACE is 5) map to TRACE; 0 or less to UNSPECIFIED.
    """
    if levelno >= 10:
        number = std_to_otel(levelno)
    elif levelno > 0:
        number = SeverityNumber.TRACE
    else:
        number = SeverityNumber.UNSPECIFIED
    text = name.upper()
    return number, _TEXT.get(text, text)


def exception_from_text(text: str) -> dict[str, AnyValue]:
    """``exception.*`` attributes of a formatted traceback (structlog's ``format_exc_info``):
    the text as the stack trace; type and message from its last line when it has that form."""
    attributes: dict[str, AnyValue] = {_EXCEPTION_STACKTRACE: text}
    lines = text.rstrip().splitlines()
    if lines:
        match = _EXCEPTION_LINE.match(lines[-1])
        if match:
            attributes[_EXCEPTION_TYPE] = match.group(1)
            attributes[_EXCEPTION_MESSAGE] = match.group(2) or ""
    return attributes


def exception_from_dicts(stacks: list[Any], encoder: Encoder) -> dict[str, AnyValue]:
    """``exception.*`` attributes of structlog's ``dict_tracebacks`` form: a list of stacks,
    the raised exception first; the whole list JSON-encoded as the stack trace."""
    attributes: dict[str, AnyValue] = {_EXCEPTION_STACKTRACE: encoder.value(stacks)}
    first = stacks[0] if stacks else None
    if isinstance(first, Mapping):
        if isinstance(first.get("exc_type"), str):
            attributes[_EXCEPTION_TYPE] = first["exc_type"]
        if isinstance(first.get("exc_value"), str):
            attributes[_EXCEPTION_MESSAGE] = first["exc_value"]
    return attributes


class Emitter:
    """Emits OTel log records for one bridge; never raises (errors are counted and
    reported once per minute on the ``otelkit`` logger)."""

    def __init__(self, component: str, logger_provider: LoggerProvider | None) -> None:
        self.component = component
        self.encoder = Encoder()
        self.failed = 0
        self._fixed = logger_provider
        self._provider: LoggerProvider | None = None
        self._loggers: dict[str, Logger] = {}
        self._local = threading.local()

    def logger(self, scope: str) -> Logger | None:
        """The logger for ``scope``, or None when nothing would record it (no SDK, an
        export in progress, or a record emitted while emitting one)."""
        if getattr(self._local, "emitting", False) or not is_instrumentation_enabled():
            return None
        provider = self._fixed if self._fixed is not None else _logs.get_logger_provider()
        if isinstance(provider, NoOpLoggerProvider):
            return None
        loggers = self._loggers
        if provider is not self._provider:
            loggers = self._loggers = {}  # replaced whole: readers never see it half-made
            self._provider = provider
        logger = loggers.get(scope)
        if logger is None:
            logger = loggers[scope] = provider.get_logger(scope)
        return logger

    def emit(
        self,
        logger: Logger,
        *,
        timestamp: int | None,
        severity: tuple[SeverityNumber, str],
        body: AnyValue,
        attributes: dict[str, AnyValue],
        exception: BaseException | None,
    ) -> None:
        """Emit one record with the active context (trace and span ids)."""
        local = self._local
        local.emitting = True
        try:
            add_exception(attributes, exception)
            now = time.time_ns()
            logger.emit(
                timestamp=timestamp if timestamp is not None else now,
                observed_timestamp=now,
                context=otel_context.get_current(),
                severity_number=severity[0],
                severity_text=severity[1],
                body=body,
                attributes=attributes,
            )
        finally:
            local.emitting = False

    def report(self, exc: BaseException) -> None:
        """Count and report an error of this bridge (never raises)."""
        self.failed += 1
        report_internal_error(self.component, exc)
