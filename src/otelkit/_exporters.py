"""Exporting pipelines: OTLP (HTTP or gRPC), console, memory and none.

Imported only when ``configure()`` builds one of them; network exporters are imported
lazily again inside, so a process that exports to the console or to memory never imports
grpc or requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelkit._batch import BatchLogRecordProcessor, BatchSpanProcessor
from otelkit._config import ExportTarget, Settings
from otelkit._drops import DropLedger
from otelkit._pipeline import ExportCounts, Pipeline, SwitchMetricExporter, periodic_reader

__all__ = ["MemoryExporters", "build_pipeline"]


class _CountingSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, counts: ExportCounts) -> None:
        self.inner, self.counts = inner, counts
        self._stopped = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        self.counts.add(result is SpanExportResult.SUCCESS, len(spans))
        return result

    def shutdown(self) -> None:
        if not self._stopped.is_set():  # called early by a bounded shutdown, then again
            self._stopped.set()
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _CountingLogExporter(LogRecordExporter):
    def __init__(self, inner: LogRecordExporter, counts: ExportCounts) -> None:
        self.inner, self.counts = inner, counts
        self._stopped = threading.Event()

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        result = self.inner.export(batch)
        self.counts.add(result is LogRecordExportResult.SUCCESS, len(batch))
        return result

    def shutdown(self) -> None:
        if not self._stopped.is_set():
            self._stopped.set()
            self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _NoSpans(SpanProcessor):
    """Exporter ``none``: spans exist (ids, context) but go nowhere."""


class _NoLogs(LogRecordProcessor):
    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class RelayedMetricsMemory(MetricExporter):
    """Keeps every metric batch that relay children sent (``exporter="memory"``)."""

    def __init__(self, batches: list[MetricsData] | None = None) -> None:
        super().__init__()
        self.batches: list[MetricsData] = [] if batches is None else batches
        self._lock = threading.Lock()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        with self._lock:
            self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


@dataclass
class MemoryExporters:
    """What ``exporter="memory"`` collects: finished spans, log records and metrics (the
    process's own in ``metrics``, what relay children sent in ``relayed_metrics``)."""

    spans: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    logs: InMemoryLogRecordExporter = field(
        default_factory=lambda: InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    )
    metrics: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)
    relayed_metrics: list[MetricsData] = field(default_factory=list)

    def clear(self) -> None:
        """Forget everything collected so far."""
        self.spans.clear()
        self.logs.clear()
        self.relayed_metrics.clear()


def _otlp_exporters(
    targets: dict[str, ExportTarget] | Any,
) -> tuple[SpanExporter, LogRecordExporter, MetricExporter]:
    traces, logs, metrics = targets["traces"], targets["logs"], targets["metrics"]
    span_exporter: SpanExporter
    log_exporter: LogRecordExporter
    metric_exporter: MetricExporter
    if traces.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GS

        span_exporter = GS(**_grpc_args(traces))
    else:
        from otelkit.export import OtlpHttpSpanExporter

        span_exporter = OtlpHttpSpanExporter(**_http_args(traces))
    if logs.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GL

        log_exporter = GL(**_grpc_args(logs))
    else:
        from otelkit.export import OtlpHttpLogExporter

        log_exporter = OtlpHttpLogExporter(**_http_args(logs))
    if metrics.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GM,
        )

        metric_exporter = GM(**_grpc_args(metrics))
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HM,
        )

        metric_exporter = HM(**_http_args(metrics))
    return span_exporter, log_exporter, metric_exporter


def _encoder(exporter: SpanExporter | LogRecordExporter) -> Callable[[Any], Any] | None:
    """What the batch processor queues for a span or a log record: otelkit's OTLP/HTTP
    exporters take items written when they end or are emitted
    (``OtlpHttpSpanExporter.span_encoder``, ``OtlpHttpLogExporter.record_encoder``),
    others the SDK's objects."""
    from otelkit.export import OtlpHttpLogExporter, OtlpHttpSpanExporter

    if isinstance(exporter, OtlpHttpSpanExporter):
        return exporter.span_encoder()
    if isinstance(exporter, OtlpHttpLogExporter):
        return exporter.record_encoder()
    return None


def _http_args(target: ExportTarget) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http import Compression

    return {
        "endpoint": target.endpoint,
        "headers": dict(target.headers),
        "timeout": target.timeout,
        "compression": Compression.Gzip
        if target.compression == "gzip"
        else Compression.NoCompression,
    }


def _grpc_args(target: ExportTarget) -> dict[str, Any]:
    from grpc import Compression

    return {
        "endpoint": target.endpoint,
        "insecure": target.endpoint.startswith("http://"),
        "headers": dict(target.headers),
        "timeout": target.timeout,
        "compression": Compression.Gzip
        if target.compression == "gzip"
        else Compression.NoCompression,
    }


def build_pipeline(settings: Settings, drops: DropLedger) -> Pipeline:
    """Processors and readers for ``settings.exporter`` (coalescing is wrapped by the caller).

    The exporting processors are otelkit's own batch processors, which count every record
    they drop in ``drops``.
    """
    counts = {"traces": ExportCounts(), "logs": ExportCounts()}
    hooks: list[Callable[[], None]] = []
    interval_ms = settings.metric_interval * 1000
    if settings.exporter == "memory":
        memory = MemoryExporters()
        return Pipeline(
            SimpleSpanProcessor(_CountingSpanExporter(memory.spans, counts["traces"])),
            SimpleLogRecordProcessor(_CountingLogExporter(memory.logs, counts["logs"])),
            [memory.metrics],
            counts,
            hooks,
            memory,
            metric_exporter=SwitchMetricExporter(RelayedMetricsMemory(memory.relayed_metrics)),
        )
    if settings.exporter == "none":
        return Pipeline(_NoSpans(), _NoLogs(), [], counts, hooks)
    if settings.exporter == "console":
        from otelkit._console import (
            ConsoleLogExporter,
            ConsoleMetricExporter,
            ConsoleTraceExporter,
        )

        console_metrics = SwitchMetricExporter(ConsoleMetricExporter())
        # Batch processors: the terminal is written from their threads, not from span.end()
        # or a logging call.
        spans = BatchSpanProcessor(ConsoleTraceExporter(), drops=drops, schedule_delay_millis=200)
        logs = BatchLogRecordProcessor(ConsoleLogExporter(), drops=drops, schedule_delay_millis=200)
        return Pipeline(
            spans,
            logs,
            [periodic_reader(console_metrics, interval_ms)],
            counts,
            hooks,
            metric_exporter=console_metrics,
            batchers=[spans.core, logs.core],
        )
    from otelkit._unreachable import quiet_exporter_loggers

    quiet_exporter_loggers()  # otelkit reports failed exports itself, once, in plain words
    span_exporter, log_exporter, metric_exporter = _otlp_exporters(settings.targets)
    counted_spans = _CountingSpanExporter(span_exporter, counts["traces"])
    counted_logs = _CountingLogExporter(log_exporter, counts["logs"])
    # Shutting an OTLP exporter down interrupts its retry back-off: the bounded shutdown
    # calls these when nothing listens or its deadline passes.
    hooks.extend([counted_spans.shutdown, counted_logs.shutdown])
    switch = SwitchMetricExporter(metric_exporter)
    span_processor = BatchSpanProcessor(counted_spans, drops=drops, encode=_encoder(span_exporter))
    log_processor = BatchLogRecordProcessor(
        counted_logs, drops=drops, encode=_encoder(log_exporter)
    )
    return Pipeline(
        span_processor,
        log_processor,
        [
            periodic_reader(
                switch, interval_ms, timeout_millis=settings.targets["metrics"].timeout * 1000
            )
        ],
        counts,
        hooks,
        metric_exporter=switch,
        batchers=[span_processor.core, log_processor.core],
    )
