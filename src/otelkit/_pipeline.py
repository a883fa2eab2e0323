"""The pipeline a configuration installs: its processors, readers and export counts.

This module stays light (a relay child imports it at start-up); the exporting pipelines are
built by :mod:`otelkit._exporters`, imported only when one is needed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

if TYPE_CHECKING:
    from otelkit._exporters import MemoryExporters

__all__ = [
    "ExportCounts",
    "Pipeline",
    "SwitchLogProcessor",
    "SwitchSpanProcessor",
    "build_relay_child_pipeline",
]


@dataclass
class ExportCounts:
    """How many items an exporter handed on successfully and how many it failed to."""

    exported: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, ok: bool, n: int) -> None:
        with self.lock:
            if ok:
                self.exported += n
            else:
                self.failed += n


class SwitchSpanProcessor(SpanProcessor):
    """Forwards to a delegate that can be replaced (after fork, a child swaps pipelines)."""

    def __init__(self, delegate: SpanProcessor) -> None:
        self.delegate = delegate

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.delegate.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.delegate.on_end(span)

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)


class SwitchLogProcessor(LogRecordProcessor):
    """Forwards to a delegate that can be replaced (after fork, a child swaps pipelines)."""

    def __init__(self, delegate: LogRecordProcessor) -> None:
        self.delegate = delegate

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.delegate.on_emit(log_record)

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)


@dataclass
class Pipeline:
    """The processors and readers of one configuration, before they are installed."""

    span_processor: SpanProcessor
    log_processor: LogRecordProcessor
    metric_readers: list[MetricReader]
    counts: dict[str, ExportCounts]
    shutdown_hooks: list[Callable[[], None]]
    memory: MemoryExporters | None = None
    logging_handler: Callable[[int], logging.Handler] | None = None
    """Builds the stdlib logging bridge when the pipeline has a cheaper one than the default."""
    relay_child: bool = False


def build_relay_child_pipeline(resource: Resource, relay_env: str) -> Pipeline:
    """A relay child's pipeline: spans and logs go to the parent over its Unix socket.

    No network exporter is imported (no grpc, no requests); coalescing happens in the host.
    Metrics are not relayed: a relay child has no metric reader.
    """
    from otelkit.relay import ChildPipeline

    child = ChildPipeline.from_env(relay_env, resource=resource)
    return Pipeline(
        child.span_processor,
        child.log_processor,
        [],
        {"traces": ExportCounts(), "logs": ExportCounts()},
        [],
        logging_handler=lambda level: child.logging_handler(level=level),
        relay_child=True,
    )
