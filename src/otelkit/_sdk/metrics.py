"""Metrics shortcuts: a forked child's fresh metric state."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider

from otelkit._sdk._check import checked

__all__ = ["METRIC_RESET_OK", "reset_metric_state"]


def _reset(provider: MeterProvider) -> None:
    consumer: Any = provider._measurement_consumer
    # A lock copied by fork may be held by a parent thread that does not exist here.
    consumer._lock = threading.Lock()
    readers: Any = getattr(provider, "_metric_readers", None)
    if readers is not None and hasattr(consumer, "add_metric_reader"):
        for reader in readers:
            consumer.add_metric_reader(reader)  # swaps in a fresh storage for that reader
    else:
        # SDK 1.40: no add_metric_reader; the consumer's constructor builds a fresh storage
        # per reader of its configuration. Its registered asynchronous instruments stay.
        asynchronous = consumer._async_instruments
        consumer.__init__(consumer._sdk_config)
        consumer._async_instruments = asynchronous
        readers = consumer._sdk_config.metric_readers
    for reader in readers:
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


METRIC_RESET_OK = checked("reset_metric_state", _check_metric_reset)
"""Whether :func:`reset_metric_state` works with this SDK."""
