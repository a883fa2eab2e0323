"""The host's hand-off of relayed metric batches to its own metric exporter.

The relay's serving thread must not wait on the network, so decoded batches go through a
short :class:`~otelkit._batch.BatchCore` queue to an export thread. The serving thread offers
under ``blocking_offers``: a slow exporter makes it wait (back-pressure reaches the
children), and whatever cannot be exported is counted in data points, by reason.
"""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from otelkit._batch import BatchCore
from otelkit._drops import DropLedger
from otelkit.relay._metrics import count_points

__all__ = ["RelayedMetrics"]

_MAX_BATCHES = 64


class RelayedMetrics:
    """Exports relayed :class:`MetricsData` through ``exporter``, one batch at a time."""

    def __init__(self, exporter: MetricExporter, drops: DropLedger) -> None:
        self._exporter = exporter
        self._core: BatchCore[MetricsData] = BatchCore(
            self._export,
            signal="metrics",
            drops=drops,
            max_queue_size=_MAX_BATCHES,
            schedule_delay=0.05,
            max_export_batch_size=1,
            export_timeout=30.0,
            name="relay-metrics",
            weight=count_points,
        )

    def _export(self, batch: list[MetricsData]) -> bool:
        return all(self._exporter.export(data) is MetricExportResult.SUCCESS for data in batch)

    def offer(self, data: MetricsData) -> None:
        """Queue one child's collection (waits for room on the relay's serving thread)."""
        self._core.offer(data)

    def close(self, timeout: float) -> None:
        """Export what is queued within ``timeout`` seconds; count the rest."""
        self._core.shutdown(timeout)
