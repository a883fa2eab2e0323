"""The child's hot path: SDK processors and a stdlib logging handler that only buffer.

Each of them turns a record into something the :class:`~otelkit.relay.ChildPipeline` can
buffer and hands it over; none of them does I/O or raises into the caller.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from itertools import islice
from time import time_ns
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import INVALID_SPAN, StatusCode
from opentelemetry.trace import Span as ApiSpan

from otelkit._errors import report_internal_error
from otelkit._sdk.context import SPAN_LOOKUP, current_span
from otelkit.relay._buffer import CLASS_ERROR, CLASS_INFO, severity_class

if TYPE_CHECKING:
    from otelkit.relay.child import ChildPipeline

__all__ = ["RelayLogRecordProcessor", "RelayLoggingHandler", "RelaySpanProcessor"]

# Attributes every stdlib LogRecord has; anything else came from ``extra=``.
_RESERVED = frozenset(
    vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
_OTEL_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}
# stdlib level -> OTel severity number, as the OpenTelemetry logging bridge maps it.
_SEVERITY = [0] * 10 + [5, 6, 7] + [8] * 7 + [9, 10, 11] + [12] * 7 + [13, 14, 15] + [16] * 7
_SEVERITY += [17, 18, 19] + [20] * 7 + [21, 22, 23, 24]


def _level(levelno: int) -> tuple[int, int]:
    """``(OTel severity number, buffer class)`` of a stdlib level."""
    number = 0 if levelno < 0 else _SEVERITY[levelno] if levelno < len(_SEVERITY) else 24
    return number, severity_class(number)


_LEVELS = {levelno: _level(levelno) for levelno in range(60)}
_STANDARD_FIELDS = len(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None)))


class _PipelineControl:
    """``shutdown``/``force_flush`` of both processors: they act on the whole pipeline."""

    _pipeline: ChildPipeline

    def shutdown(self) -> None:
        """Flush what is buffered (bounded) and stop the pipeline."""
        self._pipeline.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Send everything buffered; ``False`` if it did not finish in time."""
        return self._pipeline.force_flush(timeout_millis)


class RelayLogRecordProcessor(_PipelineControl, LogRecordProcessor):
    """SDK log record processor that buffers every record for the relay."""

    def __init__(self, pipeline: ChildPipeline) -> None:
        self._pipeline = pipeline

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Buffer the record (never blocks, never raises)."""
        try:
            severity = log_record.log_record.severity_number
            self._pipeline.offer_log(
                log_record, severity_class(severity.value if severity is not None else 0)
            )
        except Exception as exc:  # noqa: BLE001 - hot path: contain and count
            report_internal_error("relay.child", exc)


class RelaySpanProcessor(_PipelineControl, SpanProcessor):
    """SDK span processor that buffers every ended span for the relay (error spans rank
    like ERROR log records in the overflow policy)."""

    def __init__(self, pipeline: ChildPipeline) -> None:
        self._pipeline = pipeline

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Buffer the span (never blocks, never raises)."""
        try:
            error = span.status.status_code is StatusCode.ERROR
            self._pipeline.offer_span(span, CLASS_ERROR if error else CLASS_INFO)
        except Exception as exc:  # noqa: BLE001 - hot path: contain and count
            report_internal_error("relay.child", exc)


class RelayLoggingHandler(logging.Handler):
    """A stdlib logging handler that buffers records for the relay directly.

    It produces what the OpenTelemetry logging bridge
    (``opentelemetry.instrumentation.logging``'s ``LoggingHandler``) would — body, severity,
    ``extra=`` attributes, ``exception.*`` attributes, trace and span ids, the logger name as
    instrumentation scope — without building SDK objects per record, which makes a logging
    call several times cheaper in a relay child. It takes no handler lock: the buffer is
    thread-safe on its own.
    """

    def __init__(
        self,
        pipeline: ChildPipeline,
        *,
        level: int = logging.NOTSET,
        scrub: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None,
    ) -> None:
        super().__init__(level=level)
        self._pipeline = pipeline
        self._offer = pipeline.offer_log  # the pipeline's own routine, as for SDK records
        self._scrub = scrub  # applied to each entry before it is buffered

    def handle(self, record: logging.LogRecord) -> bool:
        """Filter, then buffer ``record`` without the handler lock (nothing here needs it)."""
        if self.filters:
            result = self.filter(record)
            if not result:
                return False
            if isinstance(result, logging.LogRecord):
                record = result
        self._buffer(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer ``record`` (never blocks on I/O, never raises)."""
        self._buffer(record)

    def _buffer(self, record: logging.LogRecord) -> None:
        try:
            fields = record.__dict__
            attributes: dict[str, Any] | None = None
            event_name = None
            if len(fields) > _STANDARD_FIELDS:
                attributes = {
                    key: fields[key]
                    for key in islice(fields, _STANDARD_FIELDS, None)
                    if key not in _RESERVED
                }
                if "otel.event.name" in attributes or "event.name" in attributes:
                    event_name = attributes.pop("otel.event.name", None)
                    deprecated = attributes.pop("event.name", None)
                    event_name = event_name or deprecated
            if record.exc_info:
                attributes = _with_exception(attributes, record.exc_info)
            msg = record.msg
            if self.formatter:
                body = self.format(record)
            elif type(msg) is str:  # LogRecord.getMessage() without its str() and call
                args = record.args
                body = msg % args if args else msg
            else:
                body = record.getMessage()
            # The seam's shortcut, inlined (no call frame), or the public current span.
            span = _read_context().get(_span_key) if _read_context is not None else current_span()
            if span is None or span is INVALID_SPAN or not isinstance(span, ApiSpan):
                trace_id = span_id = flags = 0
            else:
                context = span.get_span_context()
                trace_id, span_id = context.trace_id, context.span_id
                flags = int(context.trace_flags)  # a plain int: pickled without its class
            levelno = record.levelno
            level = _LEVELS.get(levelno)
            if level is None:
                level = _level(levelno)
            levelname = record.levelname
            entry = (
                int(record.created * 1e9),
                time_ns(),
                level[0],
                _OTEL_TEXT.get(levelname, levelname),
                body,
                attributes,
                trace_id,
                span_id,
                flags,
                record.name,
                None,
                event_name,
                0,
            )
            if self._scrub is not None:
                entry = self._scrub(entry)
            self._offer(entry, level[1])
        except Exception as exc:  # noqa: BLE001 - hot path: contain and count
            report_internal_error("relay.handler", exc)


_read_context, _span_key = SPAN_LOOKUP if SPAN_LOOKUP is not None else (None, "")


def _with_exception(attributes: dict[str, Any] | None, exc_info: Any) -> dict[str, Any]:
    out = attributes if attributes is not None else {}
    exc_type, value, tb = exc_info
    if exc_type is not None:
        out["exception.type"] = exc_type.__name__
    if value is not None and value.args:
        out["exception.message"] = str(value.args[0])
    if tb is not None:
        out["exception.stacktrace"] = "".join(traceback.format_exception(*exc_info))
    return out
