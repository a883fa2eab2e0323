"""The preloader's OTel instruments. Attributes are fixed, low-cardinality sets: never a key."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation, get_meter_provider

from otelkit._errors import report_internal_error
from otelkit._version import __version__

__all__ = ["DURATION_BUCKETS", "REASONS", "PreloadMetrics"]

REASONS = ("demand", "related", "refresh")
"""Why a load ran: a reader missed, a related key was prefetched, a hot key was refreshed."""

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Explicit histogram buckets (seconds) of ``otelkit.preload.load.duration``."""

_HIT = {"result": "hit"}
_MISS = {"result": "miss"}
_LOAD_ATTRS = {
    (reason, ok): {"reason": reason, "result": "success" if ok else "error"}
    for reason in REASONS
    for ok in (True, False)
}
_REASON_ATTRS = {reason: {"reason": reason} for reason in REASONS}
_SKIP_ATTRS = {"no_loader": {"reason": "no_loader"}}


def _zero() -> float:
    return 0.0


class PreloadMetrics:
    """Counters, a histogram and two observable gauges fed by a preloader.

    ``tracked_keys`` and ``threshold`` are read by the gauges' callbacks; they must not
    raise (a failure is contained and reported as an otelkit internal error).
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None,
        *,
        tracked_keys: Callable[[], float],
        threshold: Callable[[], float],
    ) -> None:
        meter = (meter_provider or get_meter_provider()).get_meter("otelkit.preload", __version__)
        self._requests = meter.create_counter(
            "otelkit.cache.requests",
            unit="{request}",
            description="Cache reads through the preloader, by result (hit or miss).",
        )
        self._loads = meter.create_counter(
            "otelkit.preload.loads",
            unit="{load}",
            description="Loader calls, by reason (demand, related, refresh) and result.",
        )
        self._duration = meter.create_histogram(
            "otelkit.preload.load.duration",
            unit="s",
            description="How long loader calls took, by reason.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._used = meter.create_counter(
            "otelkit.preload.used",
            unit="{entry}",
            description="Preloaded entries served to a reader before they expired.",
        )
        self._wasted = meter.create_counter(
            "otelkit.preload.wasted",
            unit="{entry}",
            description="Preloaded entries that expired, were replaced or evicted unused.",
        )
        self._skipped = meter.create_counter(
            "otelkit.preload.skipped",
            unit="{key}",
            description="Related keys not prefetched, by reason (no_loader: none registered).",
        )
        self._tracked_keys = tracked_keys
        self._threshold = threshold
        self._open = True
        meter.create_observable_gauge(
            "otelkit.preload.tracked_keys",
            callbacks=[self._observe_tracked],
            unit="{key}",
            description="Keys whose popularity the preloader tracks (bounded by max_keys).",
        )
        meter.create_observable_gauge(
            "otelkit.preload.threshold",
            callbacks=[self._observe_threshold],
            unit="1",
            description="Current (adaptive) popularity score a key needs to be preloaded.",
        )

    def close(self) -> None:
        """Stop observing: the gauges report nothing once the preloader is closed."""
        self._open = False
        # The meter keeps the callbacks for its lifetime: let go of the preloader's state.
        self._tracked_keys = _zero
        self._threshold = _zero

    def request(self, hit: bool) -> None:
        """One cache read."""
        self._requests.add(1, _HIT if hit else _MISS)

    def load(self, reason: str, ok: bool, seconds: float) -> None:
        """One finished loader call."""
        self._loads.add(1, _LOAD_ATTRS[reason, ok])
        self._duration.record(max(0.0, seconds), _REASON_ATTRS[reason])

    def used(self, reason: str) -> None:
        """A preloaded entry was served to a reader."""
        self._used.add(1, _REASON_ATTRS[reason])

    def wasted(self, reason: str) -> None:
        """A preloaded entry left the cache without being served."""
        self._wasted.add(1, _REASON_ATTRS[reason])

    def skipped(self, reason: str, count: int) -> None:
        """``count`` related keys were not prefetched, for ``reason``."""
        self._skipped.add(count, _SKIP_ATTRS[reason])

    def _observe_tracked(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe(self._tracked_keys)

    def _observe_threshold(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe(self._threshold)

    def _observe(self, read: Callable[[], float]) -> list[Observation]:
        if not self._open:
            return []
        try:
            return [Observation(read())]
        except Exception as exc:  # noqa: BLE001 - a metric callback must never raise
            report_internal_error("preload.metrics", exc)
            return []
