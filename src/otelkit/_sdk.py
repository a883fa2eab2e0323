"""The one place that touches private names of the OpenTelemetry SDK.

Each shortcut here checks itself at import against the public behaviour it stands for and,
when the check fails (a newer SDK changed its internals), the caller takes the public-API
path instead; ``OTELKIT_SDK_FALLBACKS=1`` forces every fallback. See ``docs/sdk-seam.md``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider

__all__ = ["FALLBACKS_FORCED", "METRIC_RESET_OK", "reset_metric_state"]

_logger = logging.getLogger("otelkit")

FALLBACKS_FORCED = os.environ.get("OTELKIT_SDK_FALLBACKS", "").lower() in {"1", "true", "yes"}
"""Whether ``OTELKIT_SDK_FALLBACKS`` asks for the public-API path everywhere."""


def _reset(provider: MeterProvider) -> None:
    consumer: Any = provider._measurement_consumer
    # A lock copied by fork may be held by a parent thread that does not exist here.
    consumer._lock = threading.Lock()
    readers: Any = provider._metric_readers
    for reader in readers:
        consumer.add_metric_reader(reader)  # swaps in a fresh storage for that reader
        if isinstance(getattr(reader, "_export_lock", None), type(threading.Lock())):
            reader._export_lock = threading.Lock()


def reset_metric_state(provider: MeterProvider) -> bool:
    """Forget every value recorded so far by ``provider``'s instruments (which keep working
    and record afresh), for a forked child whose parent's values are not its own.

    ``False`` when the shortcut is unavailable: the caller must then give the child a new
    ``MeterProvider`` (instruments made before the fork then stay with the old one).
    """
    if not METRIC_RESET_OK:
        return False
    _reset(provider)
    return True


def _check_metric_reset() -> bool:
    """Counts 5, resets, counts 2: a collection must then report exactly 2."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    try:
        counter = provider.get_meter("otelkit.sdk-check").create_counter("check")
        counter.add(5)
        _reset(provider)
        counter.add(2)
        data = reader.get_metrics_data()
        assert data is not None
        points = [
            getattr(point, "value", None)
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            for point in metric.data.data_points
        ]
        return points == [2]
    except Exception:  # noqa: BLE001 - any surprise means: use the public path
        return False
    finally:
        provider.shutdown()


def _checked(name: str, check: Any) -> bool:
    if FALLBACKS_FORCED:
        _logger.debug("otelkit: SDK shortcut %s off (OTELKIT_SDK_FALLBACKS)", name)
        return False
    ok = bool(check())
    if not ok:
        _logger.debug("otelkit: SDK shortcut %s failed its self-check; public API used", name)
    return ok


METRIC_RESET_OK = _checked("reset_metric_state", _check_metric_reset)
"""Whether :func:`reset_metric_state` works with this SDK."""
