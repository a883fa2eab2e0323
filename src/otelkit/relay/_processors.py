"""The child's hot path: SDK processors and a stdlib logging handler that only buffer.

Each of them turns a record into something the :class:`~otelkit.relay.ChildPipeline` can
buffer and hands it over; none of them does I/O or raises into the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import time_ns
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import INVALID_SPAN, StatusCode, get_current_span

from otelkit._errors import report_internal_error
from otelkit._levels import std_to_otel
from otelkit._logmapping import message, record_attributes, severity_text
from otelkit.relay._buffer import CLASS_ERROR, CLASS_INFO, severity_class

if TYPE_CHECKING:
    from otelkit.relay._child import ChildPipeline

__all__ = ["RelayLogRecordProcessor", "RelayLoggingHandler", "RelaySpanProcessor"]


def _level(levelno: int) -> tuple[int, int]:
    """``(OTel severity number, buffer class)`` of a stdlib level."""
    number = std_to_otel(levelno).value
    return number, severity_class(number)


_LEVELS = {levelno: _level(levelno) for levelno in range(60)}


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
            self._pipeline._offer_log(
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
            self._pipeline._offer_span(span, CLASS_ERROR if error else CLASS_INFO)
        except Exception as exc:  # noqa: BLE001 - hot path: contain and count
            report_internal_error("relay.child", exc)


class RelayLoggingHandler(logging.Handler):
    """A stdlib logging handler that buffers records for the relay directly.

    It maps a record as otelkit's logging bridge does (:mod:`otelkit._logmapping`: body,
    severity, ``extra=``, ``code.*`` and ``exception.*`` attributes; trace and span ids, the
    logger name as instrumentation scope), without building SDK objects per record, which makes a logging
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
        self._offer = pipeline._offer_log  # the pipeline's own routine, as for SDK records
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
            attributes, event_name = record_attributes(record)
            body = self.format(record) if self.formatter else message(record)
            span = get_current_span()
            if span is INVALID_SPAN:
                trace_id = span_id = flags = 0
            else:
                context = span.get_span_context()
                trace_id, span_id = context.trace_id, context.span_id
                flags = int(context.trace_flags)
            levelno = record.levelno
            level = _LEVELS.get(levelno)
            if level is None:
                level = _level(levelno)
            entry = (
                int(record.created * 1e9),
                time_ns(),
                level[0],
                severity_text(record.levelname),
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
