"""The coalescing counters: ``otelkit.coalesce.suppressed`` and ``otelkit.coalesce.overflow``.

Both carry one attribute, ``signal`` (``"logs"`` or ``"traces"``), never the key. The hot
path only increments integers inside the engine; :meth:`CoalesceMetrics.add` publishes the
deltas when windows close (timer) and on ``force_flush``/``shutdown``.
"""

from __future__ import annotations

from opentelemetry.metrics import MeterProvider, get_meter_provider

from otelkit._errors import report_internal_error
from otelkit._version import __version__

__all__ = ["OVERFLOW_METRIC", "SUPPRESSED_METRIC", "CoalesceMetrics"]

SUPPRESSED_METRIC = "otelkit.coalesce.suppressed"
OVERFLOW_METRIC = "otelkit.coalesce.overflow"


class CoalesceMetrics:
    """The two counters of one processor, bound to its ``signal`` attribute."""

    def __init__(self, meter_provider: MeterProvider | None, signal: str) -> None:
        provider = meter_provider if meter_provider is not None else get_meter_provider()
        meter = provider.get_meter("otelkit.coalesce", __version__)
        self._suppressed = meter.create_counter(
            SUPPRESSED_METRIC,
            unit="{record}",
            description="Records (log records, spans) dropped because a summary counts them.",
        )
        self._overflow = meter.create_counter(
            OVERFLOW_METRIC,
            unit="{record}",
            description="Records passed through uncoalesced because a coalescer was full.",
        )
        self._attributes = {"signal": signal}

    def add(self, suppressed: int, overflow: int) -> None:
        """Add the given deltas; never raises."""
        try:
            if suppressed:
                self._suppressed.add(suppressed, self._attributes)
            if overflow:
                self._overflow.add(overflow, self._attributes)
        except Exception as exc:  # noqa: BLE001 - metrics must never break the pipeline
            report_internal_error("coalesce.metrics", exc)
