"""The stdlib ``logging`` → OpenTelemetry bridge installed by ``configure()``.

Records are mapped as everywhere in otelkit (:mod:`otelkit._logmapping`: severity via
``std_to_otel``, ``code.*`` and ``exception.*`` attributes, the active span's context), without
importing ``opentelemetry-instrumentation-logging``'s instrumentor machinery (wrapt, asyncio:
~130 ms at start-up) and with loggers cached per name for a cheaper hot path.

Building the SDK's record through ``Logger.emit(timestamp=..., ...)`` re-cleans every
attribute and costs about as much as the rest of a logging call with its export; where the
SDK's logger accepts a finished ``ReadWriteLogRecord`` (checked once, see
:func:`_direct_emit_ok`), the handler builds it with :func:`otelkit._sdk.logs.fast_log_records`
(attributes that need no cleaning skip it) and hands it to ``Logger.emit(record)``, so the
provider's processors see it as before.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry._logs import Logger, LoggerProvider, LogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordLimits
from opentelemetry.trace import get_current_span

from otelkit._errors import report_internal_error
from otelkit._levels import std_to_otel
from otelkit._logmapping import message, record_attributes, severity_text
from otelkit._sdk.context import instrumentation_enabled
from otelkit._sdk.logs import attribute_limits, fast_log_records

__all__ = ["OtelLogHandler"]

_SCALARS = frozenset({str, int, float, bool})


class OtelLogHandler(logging.Handler):
    """A ``logging.Handler`` that emits every record as an OpenTelemetry log record.

    Never raises into the caller and never re-enters itself (a log call made while
    emitting, e.g. by an exporter, is dropped rather than looped). A record logged while
    instrumentation is suppressed (inside an export) is dropped too: an exporter's own
    "export failed" warning must not feed the pipeline that failed.
    """

    def __init__(self, logger_provider: LoggerProvider, level: int = logging.NOTSET) -> None:
        super().__init__(level=level)
        self._provider = logger_provider
        self._loggers: dict[str, tuple[Logger, Any, Any]] = {}
        self._local = threading.local()
        self._limits = LogRecordLimits()  # what the provider's loggers apply (the environment's)
        self._max_attributes, max_length = attribute_limits(self._limits)
        self._direct = max_length is None and _direct_emit_ok()

    def _logger(self, name: str) -> tuple[Logger, Any, Any]:
        """The logger for ``name``, with its resource and scope when records can be built
        for it directly (an SDK logger), else ``None`` for both."""
        found = self._loggers.get(name)
        if found is None:
            logger = self._provider.get_logger(name)
            resource = getattr(logger, "resource", None) if self._direct else None
            scope = getattr(logger, "instrumentation_scope", None)
            found = self._loggers[name] = (logger, resource, scope)
        return found

    def emit(self, record: logging.LogRecord) -> None:
        local = self._local
        if getattr(local, "emitting", False):
            return
        local.emitting = True
        try:
            context = otel_context.get_current()  # read once: suppression and the active span
            if not instrumentation_enabled(context):
                return
            logger, resource, scope = self._logger(record.name)
            attributes, event_name = record_attributes(record)
            body = self.format(record) if self.formatter else message(record)
            fields = (
                int(record.created * 1e9),
                time.time_ns(),
                context,
                severity_text(record.levelname),
                std_to_otel(record.levelno),
                body,
                attributes,
                event_name,
            )
            if resource is not None and scope is not None:
                logger.emit(self._record(fields, resource, scope))
            else:
                _emit_public(logger, fields)
        except Exception as exc:  # noqa: BLE001 - logging must never fail the application
            report_internal_error("log bridge", exc)
        finally:
            local.emitting = False

    def _record(self, fields: tuple[Any, ...], resource: Any, scope: Any) -> Any:
        timestamp, observed, context, text, number, body, attributes, event_name = fields
        span_context = get_current_span(context).get_span_context()
        plain = len(attributes) <= (self._max_attributes or 0) and all(
            key and type(value) in _SCALARS for key, value in attributes.items()
        )
        row = (
            *(timestamp, observed, context, span_context.trace_id, span_context.span_id),
            *(span_context.trace_flags, text, number, body, attributes, event_name, 0),
            *(resource, scope, plain),
        )
        return fast_log_records(LogRecord, (row,), self._limits)[0]

    def flush(self) -> None:
        """Nothing is buffered here; the pipeline's processors flush on their own."""


def _emit_public(logger: Logger, fields: tuple[Any, ...]) -> None:
    timestamp, observed, context, text, number, body, attributes, event_name = fields
    logger.emit(
        timestamp=timestamp,
        observed_timestamp=observed,
        context=context,
        severity_number=number,
        severity_text=text,
        body=body,
        attributes=attributes,
        event_name=event_name,
    )


_checked: list[bool] = []


def _direct_emit_ok() -> bool:
    """Whether an SDK logger hands a finished record to its processors as it is, and the
    record built here equals the one ``Logger.emit(timestamp=..., ...)`` builds (checked
    once; otherwise the handler takes the public path)."""
    if not _checked:
        try:
            ok = _check_direct_emit()
        except Exception:  # noqa: BLE001 - any surprise means: the public path
            ok = False
        _checked.append(ok)
    return _checked[0]


def _check_direct_emit() -> bool:
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
    from opentelemetry.sdk._logs import LogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    seen: list[Any] = []

    class _Keep(LogRecordProcessor):
        def on_emit(self, log_record: Any) -> None:
            seen.append(log_record)

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    provider = SdkLoggerProvider(
        resource=Resource({"service.name": "check"}), shutdown_on_exit=False
    )
    provider.add_log_record_processor(_Keep())
    handler = OtelLogHandler.__new__(OtelLogHandler)
    handler._limits = LogRecordLimits()
    handler._max_attributes = attribute_limits(handler._limits)[0]
    logger = provider.get_logger("otelkit.check")
    span = NonRecordingSpan(SpanContext(3, 4, is_remote=False, trace_flags=TraceFlags(1)))
    context: Context = set_span_in_context(span)
    fields = (1, 2, context, "WARN", std_to_otel(30), "body", {"a": 1, "b": "x"}, None)
    direct = handler._record(fields, logger.resource, logger.instrumentation_scope)  # type: ignore[attr-defined]
    logger.emit(direct)
    _emit_public(logger, fields)
    if len(seen) != 2 or seen[0] is not direct:
        return False
    a, b = seen
    fields_a = {k: v for k, v in vars(a.log_record).items() if k != "attributes"}
    fields_b = {k: v for k, v in vars(b.log_record).items() if k != "attributes"}
    return (
        fields_a == fields_b
        and dict(a.log_record.attributes) == dict(b.log_record.attributes)
        and a.resource is b.resource
        and a.instrumentation_scope == b.instrumentation_scope
        and a.dropped_attributes == b.dropped_attributes == 0
    )
