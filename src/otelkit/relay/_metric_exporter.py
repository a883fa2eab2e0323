"""The child's metric exporter: each collection travels to the host as one OTLP batch.

A ``PeriodicExportingMetricReader`` over :class:`RelayMetricExporter` collects on the
child's ``metric_interval`` (and once more at exit); the exporter encodes the batch under the
child's identity and queues it on the :class:`~otelkit.relay.ChildPipeline`, whose sender
thread writes it. The host exports it through its own metric exporter. Temporality and the
default histogram aggregation follow the same ``OTEL_EXPORTER_OTLP_METRICS_*`` variables as
the SDK's OTLP exporter, so a relayed series looks as it would exported directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from otelkit._errors import report_internal_error
from otelkit.relay._metrics import (
    count_points,
    encode_metrics_request,
    preferred_aggregation_from_env,
    preferred_temporality_from_env,
)

if TYPE_CHECKING:
    from otelkit.relay._child import ChildPipeline

__all__ = ["RelayMetricExporter"]


class RelayMetricExporter(MetricExporter):
    """Queues each collection on a :class:`~otelkit.relay.ChildPipeline` (never blocks)."""

    def __init__(self, pipeline: ChildPipeline) -> None:
        super().__init__(
            preferred_temporality=preferred_temporality_from_env(),
            preferred_aggregation=preferred_aggregation_from_env(),
        )
        self._pipeline = pipeline

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Encode the collection under the child's resource and queue it for the host."""
        points = 0
        try:
            points = count_points(metrics_data)
            if points:
                payload = encode_metrics_request(metrics_data, self._pipeline.resource)
                self._pipeline._offer_metrics(payload, points)
            return MetricExportResult.SUCCESS
        except Exception as exc:  # noqa: BLE001 - a collection must not break the reader
            report_internal_error("relay.metrics", exc)
            self._pipeline._count_dropped_metric_points(points)
            return MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Nothing is held here: batches wait in the pipeline, which its owner flushes."""
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to release: the pipeline owns the connection."""
