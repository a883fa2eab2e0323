"""Shared parts of the relay benchmarks: the record shape, a relay host, the baseline."""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import statistics
import threading
from collections.abc import Sequence
from typing import Any

from _util import ignoring_processors
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.resources import Resource

from otelkit.relay import ChildPipeline, RelayHost


def log_many(logger: logging.Logger, n: int, source: str = "child", counter: Any = None) -> None:
    """The record shape every benchmark uses: a formatted message and two extras (and, with
    ``counter``, one counter increment per record)."""
    for i in range(n):
        logger.info("record %d from %s", i, source, extra={"job.id": i, "tier": "gold"})
        if counter is not None:
            counter.add(1, {"tier": "gold"})


def quiet_logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


class CountingExporter(LogRecordExporter):
    """A no-op exporter that counts what reaches it."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.count += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def host_log_pipeline(exporter: CountingExporter) -> tuple[LogRecordProcessor, Any]:
    """The log pipeline ``otelkit.configure(relay=True)`` gives a host, over ``exporter``:
    the coalescer (default 10 s window) wrapping otelkit's batch processor with its default
    queue (2048): when the queue is full the relay stops reading, so nothing is dropped.
    Returns ``(pipeline, batch processor)``."""
    from otelkit._batch import BatchLogRecordProcessor
    from otelkit.coalesce import CoalescingLogRecordProcessor

    batch = BatchLogRecordProcessor(exporter)
    return CoalescingLogRecordProcessor(batch, window=10.0), batch


def relay_host(
    log_processor: LogRecordProcessor | None = None, metric_exporter: Any = None
) -> RelayHost:
    """A started host feeding ``log_processor`` (by default one that discards)."""
    ignore_spans, ignore_logs = ignoring_processors()
    host = RelayHost(
        span_processor=ignore_spans,
        log_processor=log_processor or ignore_logs,
        metric_exporter=metric_exporter,
    )
    host.start()
    return host


def child_pipeline(env_value: str) -> ChildPipeline:
    return ChildPipeline.from_env(
        env_value, resource=Resource({"service.name": "bench-child"}), max_buffer=1 << 20
    )


def bridge_logger(pipeline: ChildPipeline) -> logging.Logger:
    """The OpenTelemetry logging bridge feeding the pipeline's SDK processor."""
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider

    provider = LoggerProvider(resource=Resource({"service.name": "bench"}), shutdown_on_exit=False)
    provider.add_log_record_processor(pipeline.log_processor)
    return quiet_logger("bench.bridge", LoggingHandler(logger_provider=provider))


class DiscardingMetricExporter(MetricExporter):
    """The host's metric exporter in the benchmarks: accepts and forgets."""

    def __init__(self) -> None:
        super().__init__()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class CountingHandler(logging.Handler):
    """The baseline listener's handler: a no-op that counts."""

    def __init__(self, target: int) -> None:
        super().__init__()
        self.count = 0
        self.target = target
        self.done = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.count >= self.target:
            self.done.set()


def baseline_listener(
    queue: Any, target: int
) -> tuple[logging.handlers.QueueListener, CountingHandler]:
    handler = CountingHandler(target)
    listener = logging.handlers.QueueListener(queue, handler)
    listener.start()
    return listener, handler


def mp_context() -> Any:
    return multiprocessing.get_context("spawn")


def median(values: list[float]) -> float:
    return statistics.median(values)
