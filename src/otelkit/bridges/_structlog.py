"""``StructlogProcessor``: each structlog event becomes an OpenTelemetry log record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from types import FrameType
from typing import Any

from opentelemetry._logs import LoggerProvider, SeverityNumber
from opentelemetry.util.types import AnyValue

from otelkit._extras import require
from otelkit.bridges._emit import (
    CODE_FILE_PATH,
    CODE_FUNCTION_NAME,
    CODE_LINE_NUMBER,
    Emitter,
    exception_from_dicts,
    exception_from_text,
    severity_of_number,
)
from otelkit.bridges._values import safe_str

__all__ = ["StructlogProcessor"]

# structlog's method names (and ``add_log_level``'s values) as stdlib level numbers.
_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "err": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "failure": logging.ERROR,
}
_NAMES = {5: "TRACE", 10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR", 50: "FATAL"}
# Keys that become record fields rather than attributes (the event key is added per
# instance); CallsiteParameterAdder's three code keys are renamed to code.* attributes.
_FIELDS = frozenset({"level", "logger", "timestamp", "exc_info", "exception"})
_INTERNAL = frozenset({"_record", "_from_structlog"})  # ProcessorFormatter's bookkeeping
_CALLSITE = {
    "pathname": CODE_FILE_PATH,
    "lineno": CODE_LINE_NUMBER,
    "func_name": CODE_FUNCTION_NAME,
}
_IGNORED_PACKAGES = frozenset({"structlog", "logging"})
_OWN_PACKAGE = "otelkit.bridges"
_DEFAULT_SCOPE = "structlog"


def _severity(level: object) -> tuple[SeverityNumber, str]:
    if isinstance(level, str):
        levelno = _LEVELS.get(level.lower())
        if levelno is None:
            return SeverityNumber.UNSPECIFIED, level.upper()
        return severity_of_number(levelno, _NAMES[levelno])
    if isinstance(level, int) and not isinstance(level, bool):
        return severity_of_number(level, _NAMES.get(level) or logging.getLevelName(level))
    return SeverityNumber.UNSPECIFIED, safe_str(level).upper()


class StructlogProcessor:
    """A structlog processor that emits every event as an OpenTelemetry log record and
    returns the event dict unchanged (put it before your renderer)::

        structlog.configure(processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            otelkit.bridges.StructlogProcessor(),
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(),
        ])

    The record: body = the event text (``event_key``), severity from the level (the
    ``level`` key of ``add_log_level``, else the method name), scope = the ``logger`` key,
    else the bound logger's ``name``, else the calling module; every other key an attribute
    (scalars as they are, homogeneous lists as arrays, anything else JSON-encoded, what JSON
    cannot take as its ``repr``, counted in :attr:`unencodable`). ``exc_info`` (``True``, an
    exception or an exc_info tuple) gives ``exception.type``/``message``/``stacktrace``; so
    does an ``exception`` key that ``format_exc_info`` or ``dict_tracebacks`` rendered
    earlier. ``code.file.path``/``code.line.number``/``code.function.name`` come from
    ``CallsiteParameterAdder``'s keys when present, else from the calling frame (skipping
    structlog's own frames and the modules named in ``callsite_ignores``); with
    ``callsite=False`` only from the keys. Trace and span ids come from the active span.

    Records go to ``logger_provider``, by default the global one that
    ``otelkit.configure()`` installs (the relay pipeline in a relay child). Never raises
    into the logging call: a failure is counted in :attr:`failed` and reported once a
    minute on the ``otelkit`` logger.
    """

    def __init__(
        self,
        *,
        logger_provider: LoggerProvider | None = None,
        event_key: str = "event",
        callsite: bool = True,
        callsite_ignores: Iterable[str] = (),
    ) -> None:
        require("structlog", extra="structlog", needed_by="otelkit.bridges.StructlogProcessor")
        self._emitter = Emitter("structlog bridge", logger_provider)
        self._event_key = event_key
        self._fields = _FIELDS | {event_key}
        self._callsite = callsite
        self._ignores = tuple(callsite_ignores)

    @property
    def unencodable(self) -> int:
        """How many values were sent as their ``repr`` because JSON could not encode them."""
        return self._emitter.encoder.fallbacks

    @property
    def failed(self) -> int:
        """How many events could not be emitted (an internal error, reported on ``otelkit``)."""
        return self._emitter.failed

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        """Emit ``event_dict`` as a log record; return it unchanged."""
        try:
            if isinstance(event_dict, Mapping):
                self._emit(logger, method_name, event_dict)
            else:  # placed after a renderer: the rendered text is all there is
                self._emit_text(logger, method_name, event_dict)
        except Exception as exc:  # noqa: BLE001 - logging must never fail the application
            self._emitter.report(exc)
        return event_dict

    def _emit(self, logger: Any, method_name: str, event: Mapping[str, Any]) -> None:
        scope = event.get("logger")
        if not isinstance(scope, str):
            scope = getattr(logger, "name", None)
        frame = None
        if self._callsite and "pathname" not in event:
            frame = self._caller()
            if not isinstance(scope, str) and frame is not None:
                scope = frame.f_globals.get("__name__")
        if not isinstance(scope, str) or not scope:
            scope = _DEFAULT_SCOPE
        emitter = self._emitter
        otel_logger = emitter.logger(scope)
        if otel_logger is None:
            return
        value = emitter.encoder.value
        fields, callsite = self._fields, _CALLSITE
        attributes: dict[str, AnyValue] = {}
        for key, item in event.items():
            if key in fields or key in _INTERNAL:
                continue
            name = callsite.get(key, key) if type(key) is str else safe_str(key)
            if name:
                attributes[name] = value(item)
        if frame is not None:
            code = frame.f_code
            attributes[CODE_FILE_PATH] = code.co_filename
            attributes[CODE_LINE_NUMBER] = frame.f_lineno
            attributes[CODE_FUNCTION_NAME] = code.co_name
        exception = _exception(event.get("exc_info"))
        rendered = event.get("exception")
        if exception is None and isinstance(rendered, BaseException):
            exception = rendered
        elif exception is None:
            if isinstance(rendered, str) and rendered:
                attributes.update(exception_from_text(rendered))
            elif isinstance(rendered, list) and rendered:
                attributes.update(exception_from_dicts(rendered, emitter.encoder))
        body = event.get(self._event_key)
        emitter.emit(
            otel_logger,
            timestamp=_timestamp(event.get("timestamp")),
            severity=_severity(event.get("level", method_name)),
            body=body if type(body) is str else ("" if body is None else safe_str(body)),
            attributes=attributes,
            exception=exception,
        )

    def _emit_text(self, logger: Any, method_name: str, rendered: Any) -> None:
        name = getattr(logger, "name", None)
        emitter = self._emitter
        otel_logger = emitter.logger(name if isinstance(name, str) and name else _DEFAULT_SCOPE)
        if otel_logger is None:
            return
        if isinstance(rendered, (bytes, bytearray)):
            body = bytes(rendered).decode("utf-8", "replace")
        else:
            body = safe_str(rendered)
        emitter.emit(
            otel_logger,
            timestamp=None,
            severity=_severity(method_name),
            body=body,
            attributes={},
            exception=None,
        )

    def _caller(self) -> FrameType | None:
        """The first frame outside structlog, logging, this package and the ignores; for
        structlog's async methods (``ainfo``, ...) the frame structlog recorded for them."""
        frame: FrameType | None = _async_caller() or sys._getframe(1)
        ignores = self._ignores
        while frame is not None:
            name = frame.f_globals.get("__name__") or ""
            if not (
                name.partition(".")[0] in _IGNORED_PACKAGES
                or name.startswith(_OWN_PACKAGE)
                or (ignores and name.startswith(ignores))
            ):
                return frame
            frame = frame.f_back
        return None


def _async_caller() -> FrameType | None:
    """The calling frame structlog's async log methods record before they hand the event to
    a thread (``structlog.contextvars._ASYNC_CALLING_STACK``, a private name read with a
    fallback: without it the async call site is not found and only the keys give it)."""
    module = sys.modules.get("structlog.contextvars")
    stack = getattr(module, "_ASYNC_CALLING_STACK", None)
    if stack is None:
        return None
    try:
        frame = stack.get(None)
    except Exception:  # noqa: BLE001 - not the ContextVar we expect
        return None
    return frame if isinstance(frame, FrameType) else None


def _exception(exc_info: object) -> BaseException | None:
    if exc_info is None or exc_info is False:
        return None
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        value = exc_info[1]
        return value if isinstance(value, BaseException) else None
    if exc_info:  # True: the exception being handled
        return sys.exc_info()[1]
    return None


def _timestamp(value: object) -> int | None:
    """A numeric ``timestamp`` key (``TimeStamper(fmt=None)``: seconds since the epoch) in
    nanoseconds; a rendered one is left to the record's own time (the same moment)."""
    if type(value) is float or type(value) is int:
        return int(value * 1_000_000_000)
    return None
