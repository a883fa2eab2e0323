"""The stdlib ``logging`` → OpenTelemetry log record mapping, written once.

The logging bridge (:mod:`otelkit._logbridge`), a relay child's handler
(:mod:`otelkit.relay._processors`) and the structlog/loguru bridges (:mod:`otelkit.bridges`)
all map through here, so the same call exports the same fields in a host and in its
children, and floods of it from both coalesce into one summary. Semantic conventions:
``code.file.path``, ``code.function.name``, ``code.line.number`` from the record;
``exception.type`` the qualified class name (a builtin's bare), ``exception.message``
``str(exc)``, ``exception.stacktrace`` the formatted traceback. Fields given with
``extra=`` become attributes (``otel.event.name``, or the older ``event.name``, becomes the
record's event name) and win over the ``exception.*`` ones, as in the SDK.
"""

from __future__ import annotations

import logging
import traceback
from itertools import islice
from typing import Any

from opentelemetry.util.types import AnyValue

__all__ = [
    "add_exception",
    "exception_attributes",
    "message",
    "record_attributes",
    "severity_text",
]

_PLAIN = logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None)
# Attributes every LogRecord has; anything else on a record came from ``extra=`` (or a
# filter). A record's own fields come first in its __dict__, so extras are what follows.
_RESERVED = frozenset(vars(_PLAIN).keys() | {"message", "asctime", "taskName"})
_STANDARD_FIELDS = len(vars(_PLAIN))
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}


def severity_text(levelname: str) -> str:
    """A stdlib level name as OpenTelemetry's severity text (``WARN``, ``FATAL``)."""
    return _SEVERITY_TEXT.get(levelname, levelname)


def message(record: logging.LogRecord) -> str:
    """``record.getMessage()``, without its call and ``str()`` for a plain string."""
    msg = record.msg
    if type(msg) is str:
        args = record.args
        return msg % args if args else msg
    return record.getMessage()


def exception_attributes(exception: BaseException) -> dict[str, AnyValue]:
    """The ``exception.*`` attributes of ``exception``."""
    kind = type(exception)
    module = kind.__module__
    return {
        "exception.type": f"{module}.{kind.__qualname__}"
        if module and module != "builtins"
        else kind.__qualname__,
        "exception.message": str(exception),
        "exception.stacktrace": "".join(
            traceback.format_exception(kind, exception, exception.__traceback__)
        ),
    }


def add_exception(attributes: dict[str, Any], exception: BaseException | None) -> None:
    """Add the ``exception.*`` attributes of ``exception`` (if any) to ``attributes``;
    attributes already there win."""
    if exception is not None:
        for key, value in exception_attributes(exception).items():
            attributes.setdefault(key, value)


def record_attributes(record: logging.LogRecord) -> tuple[dict[str, Any], str | None]:
    """``(attributes, event name)`` of a stdlib record: its ``extra=`` fields, ``code.*``
    and, when it carries an exception, ``exception.*``."""
    fields = record.__dict__
    attributes: dict[str, Any] = {}
    event_name = None
    if len(fields) > _STANDARD_FIELDS:
        for key in islice(fields, _STANDARD_FIELDS, None):
            if key not in _RESERVED:
                attributes[key] = fields[key]
        if "otel.event.name" in attributes or "event.name" in attributes:
            event_name = attributes.pop("otel.event.name", None)
            older = attributes.pop("event.name", None)
            event_name = event_name or older
    attributes["code.file.path"] = record.pathname
    attributes["code.function.name"] = record.funcName
    attributes["code.line.number"] = record.lineno
    exc_info = record.exc_info
    if exc_info and exc_info[1] is not None:
        add_exception(attributes, exc_info[1])
    return attributes, event_name
