"""The pipeline a configuration installs: its processors, readers and export counts.

This module stays light (a relay child imports it at start-up); the exporting pipelines are
built by :mod:`otelkit._exporters`, imported only when one is needed.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otelkit._fork import after_fork_in_child
from otelkit._threads import signals_blocked

if TYPE_CHECKING:
    from otelkit._batch import BatchCore
    from otelkit._config import Settings
    from otelkit._exporters import MemoryExporters
    from otelkit.relay import ChildPipeline
    from otelkit.sampling import SamplingOptions, TailSampler
    from otelkit.scrubbing import ScrubbingOptions
    from otelkit.scrubbing._scrubber import Scrubber

__all__ = [
    "DiscardMetrics",
    "ExportCounts",
    "Pipeline",
    "SwitchLogProcessor",
    "SwitchMetricExporter",
    "SwitchSpanProcessor",
    "build_relay_child_pipeline",
    "make_scrubber",
    "periodic_reader",
    "scrubbed_resource",
    "scrubbing_processors",
    "wrap_sampling",
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


class DiscardMetrics(MetricExporter):
    """A metric exporter that accepts every collection and keeps none of it."""

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


class SwitchMetricExporter(MetricExporter):
    """Exports through a delegate that can be replaced (a forked child of a relay host sends
    its metrics to the relay instead of the host's network exporter), one export at a time
    (the host's reader and the relay's forwarder share the exporter)."""

    def __init__(self, delegate: MetricExporter) -> None:
        from otelkit.relay._metrics import (
            preferred_aggregation_from_env,
            preferred_temporality_from_env,
        )

        # The same environment the SDK's OTLP exporter reads, so the reader agrees with it.
        super().__init__(
            preferred_temporality=preferred_temporality_from_env(),
            preferred_aggregation=preferred_aggregation_from_env(),
        )
        self.delegate = delegate
        self._lock = threading.Lock()
        after_fork_in_child(self, SwitchMetricExporter._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        with self._lock:
            return self.delegate.export(metrics_data, timeout_millis=timeout_millis)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.delegate.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        self.delegate.shutdown(timeout_millis=timeout_millis)


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
    relay_child: ChildPipeline | None = None
    """The relay pipeline when this process exports to its parent's relay."""
    metric_exporter: SwitchMetricExporter | None = None
    """The exporter behind the metric reader, which also exports what children relay."""
    batchers: list[BatchCore[Any]] = field(default_factory=list)
    """The queues of otelkit's batch processors: shut down within the handle's deadline, so
    that what they give up is counted before the process ends."""


def periodic_reader(
    exporter: MetricExporter, interval_millis: float, *, timeout_millis: float | None = None
) -> PeriodicExportingMetricReader:
    """The SDK's periodic reader, its collection thread started with the application's
    signals blocked (see ``otelkit._threads``; after a fork see ``_telemetry``)."""
    with signals_blocked():
        return PeriodicExportingMetricReader(
            exporter, export_interval_millis=interval_millis, export_timeout_millis=timeout_millis
        )


def build_relay_child_pipeline(
    resource: Resource, relay_env: str, metric_interval: float, scrubber: Scrubber | None = None
) -> Pipeline:
    """A relay child's pipeline: spans, logs and metrics go to the parent over its socket.

    No network exporter is imported (no grpc, no requests); coalescing and tail sampling
    happen in the host. Metrics are collected every ``metric_interval`` seconds and once
    more at exit. With a ``scrubber``, the logging handler scrubs each record before it is
    buffered (the SDK's records are scrubbed by :func:`scrubbing_processors`).
    """
    from otelkit.relay import ChildPipeline
    from otelkit.relay._processors import RelayLoggingHandler

    child = ChildPipeline.from_env(relay_env, resource=resource, exit_hooks=False)
    reader = periodic_reader(child.metric_exporter, metric_interval * 1000)
    scrub = None
    if scrubber is not None:
        from otelkit.scrubbing._processors import scrub_relay_entry

        scrub = functools.partial(scrub_relay_entry, scrubber)
    return Pipeline(
        child.span_processor,
        child.log_processor,
        [reader],
        {"traces": ExportCounts(), "logs": ExportCounts()},
        [],
        logging_handler=lambda level: RelayLoggingHandler(child, level=level, scrub=scrub),
        relay_child=child,
    )


def make_scrubber(options: ScrubbingOptions | None) -> Scrubber | None:
    """The scrubber of a configuration (``None`` when scrubbing is off)."""
    if options is None:
        return None
    from otelkit.scrubbing._scrubber import Scrubber

    return Scrubber(options)


def scrubbed_resource(resource: Resource, options: ScrubbingOptions) -> Resource:
    """``resource`` with sensitive attributes scrubbed."""
    from otelkit.scrubbing._processors import scrub_resource
    from otelkit.scrubbing._scrubber import Scrubber

    return scrub_resource(resource, Scrubber(options))


def scrubbing_processors(
    span_processor: SpanProcessor,
    log_processor: LogRecordProcessor,
    scrubber: Scrubber | None,
    settings: Settings,
    meter_provider: MeterProvider,
) -> tuple[SpanProcessor, LogRecordProcessor]:
    """The processors the providers get: scrubbing ones in front of these when scrubbing
    is on (``scrubber``, else one made from ``settings``), these themselves when it is off."""
    if scrubber is None:
        scrubber = make_scrubber(settings.scrubbing)
        if scrubber is None:
            return span_processor, log_processor
    from otelkit.scrubbing import ScrubbingLogRecordProcessor, ScrubbingSpanProcessor

    scrubber.bind_meter_provider(meter_provider)
    return (
        ScrubbingSpanProcessor(span_processor, _scrubber=scrubber),
        ScrubbingLogRecordProcessor(log_processor, _scrubber=scrubber),
    )


def wrap_sampling(
    pipeline: Pipeline, options: SamplingOptions, meter_provider: MeterProvider
) -> TailSampler:
    """Put a tail sampler in front of the pipeline's processors (and so in front of
    coalescing: a sampled-out tree is never coalesced); return it."""
    from otelkit.sampling import TailSampler

    sampler = TailSampler(options, meter_provider=meter_provider)
    pipeline.span_processor = sampler.span_processor(pipeline.span_processor)
    pipeline.log_processor = sampler.log_processor(pipeline.log_processor)
    return sampler
