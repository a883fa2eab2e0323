"""``LoguruSink``: each loguru message becomes an OpenTelemetry log record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry._logs import LoggerProvider
from opentelemetry.util.types import AnyValue

from otelkit._extras import require
from otelkit.bridges._emit import (
    CODE_FILE_PATH,
    CODE_FUNCTION_NAME,
    CODE_LINE_NUMBER,
    Emitter,
    severity_of_number,
)
from otelkit.bridges._values import safe_str

__all__ = ["LoguruSink"]

_DEFAULT_SCOPE = "loguru"


class LoguruSink:
    """A loguru sink that emits every message as an OpenTelemetry log record::

        from loguru import logger
        logger.add(otelkit.bridges.LoguruSink(), format="{message}", level="INFO")

    The record: body = the message as loguru formatted it from its arguments (``format=``
    of the handler does not apply; ``"{message}"`` saves loguru formatting a line nobody
    reads), severity from the level number (TRACE → TRACE, SUCCESS → INFO4, the standard
    levels as OpenTelemetry's logging bridge maps the stdlib's), scope = the calling
    module's ``__name__`` (loguru's ``record["name"]``), attributes = ``extra`` (what
    ``bind()``, ``contextualize()`` and the call's keyword arguments put there; encoded as
    by :class:`StructlogProcessor`) plus ``code.file.path``/``code.line.number``/
    ``code.function.name``; an exception (``logger.exception``, ``opt(exception=...)``)
    gives ``exception.*``. Trace and span ids come from the active span: add the sink
    without ``enqueue=True``, which would run it on loguru's thread, outside that context.

    Records go to ``logger_provider``, by default the global one that
    ``otelkit.configure()`` installs (the relay pipeline in a relay child). Never raises:
    a failure is counted in :attr:`failed` and reported once a minute on ``otelkit``.
    """

    def __init__(self, *, logger_provider: LoggerProvider | None = None) -> None:
        require("loguru", extra="loguru", needed_by="otelkit.bridges.LoguruSink")
        self._emitter = Emitter("loguru bridge", logger_provider)

    @property
    def unencodable(self) -> int:
        """How many values were sent as their ``repr`` because JSON could not encode them."""
        return self._emitter.encoder.fallbacks

    @property
    def failed(self) -> int:
        """How many messages could not be emitted (an internal error, reported on ``otelkit``)."""
        return self._emitter.failed

    def __call__(self, message: Any) -> None:
        """Emit ``message.record`` (loguru's record dict) as a log record."""
        try:
            self._emit(message.record)
        except Exception as exc:  # noqa: BLE001 - logging must never fail the application
            self._emitter.report(exc)

    def _emit(self, record: Mapping[str, Any]) -> None:
        scope = record.get("name")
        emitter = self._emitter
        otel_logger = emitter.logger(scope if isinstance(scope, str) and scope else _DEFAULT_SCOPE)
        if otel_logger is None:
            return
        value = emitter.encoder.value
        attributes: dict[str, AnyValue] = {}
        extra = record.get("extra")
        if isinstance(extra, Mapping):
            for key, item in extra.items():
                name = key if type(key) is str else safe_str(key)
                if name:
                    attributes[name] = value(item)
        file = record.get("file")
        path = getattr(file, "path", None)
        if isinstance(path, str):
            attributes[CODE_FILE_PATH] = path
        line = record.get("line")
        if type(line) is int:
            attributes[CODE_LINE_NUMBER] = line
        function = record.get("function")
        if isinstance(function, str):
            attributes[CODE_FUNCTION_NAME] = function
        level = record.get("level")
        number = getattr(level, "no", 0)
        exception = getattr(record.get("exception"), "value", None)
        time = record.get("time")
        message = record.get("message")
        emitter.emit(
            otel_logger,
            timestamp=int(time.timestamp() * 1_000_000_000) if time is not None else None,
            severity=severity_of_number(
                number if type(number) is int else 0, safe_str(getattr(level, "name", ""))
            ),
            body=message if type(message) is str else safe_str(message),
            attributes=attributes,
            exception=exception if isinstance(exception, BaseException) else None,
        )
