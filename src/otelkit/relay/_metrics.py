"""Metrics over the relay: SDK ``MetricsData`` to OTLP protobuf bytes and back.

The child encodes with :func:`encode_metrics_request` (hand-written protobuf, no
``opentelemetry.proto`` import); the host parses with :func:`decode_metrics_request` and
hands the SDK ``MetricsData`` to its real metric exporter. ``encode_metrics(decode(encode(
data)))`` equals the SDK's ``encode_metrics(data)`` with the resource replaced; the tests
hold both halves to it. The child's metric reader takes its temporality and histogram
aggregation from the environment exactly as the SDK's OTLP exporter would.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION,
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
)
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricsData
from opentelemetry.sdk.metrics.view import (
    Aggregation,
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
)

from otelkit.relay._metrics_decode import decode_metrics_request
from otelkit.relay._metrics_encode import encode_metrics_request

__all__ = [
    "count_points",
    "decode_metrics_request",
    "encode_metrics_request",
    "preferred_aggregation_from_env",
    "preferred_temporality_from_env",
]

_log = logging.getLogger("otelkit")


def count_points(data: MetricsData) -> int:
    """The number of data points in ``data`` (the unit in which dropped metrics are counted)."""
    return sum(
        len(metric.data.data_points)
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    )


# A child has no OTLP exporter to ask: its reader takes the preferences the host's OTLP
# exporter would have had, so a relayed series looks as it would exported directly.
_D, _C = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE
_INSTRUMENTS = (
    Counter,
    UpDownCounter,
    Histogram,
    ObservableCounter,
    ObservableUpDownCounter,
    ObservableGauge,
)
# The specification's table, in the order of _INSTRUMENTS. The synchronous Gauge is absent
# from the SDK exporter's mapping too: a reader gives it CUMULATIVE.
_TEMPORALITY_PREFERENCES = {
    "CUMULATIVE": (_C, _C, _C, _C, _C, _C),
    "DELTA": (_D, _C, _D, _D, _C, _C),
    "LOWMEMORY": (_D, _C, _D, _C, _C, _C),
}


def preferred_temporality_from_env(
    environ: Mapping[str, str] | None = None,
) -> dict[type, AggregationTemporality]:
    """The temporality per instrument class that
    ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` (``cumulative`` by default,
    ``delta`` or ``lowmemory``, case-insensitive) asks of an OTLP metric exporter.

    An unknown value logs one warning and means ``cumulative``, as in the SDK.
    """
    env = os.environ if environ is None else environ
    value = env.get(OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, "CUMULATIVE")
    preference = value.upper().strip()
    temporalities = _TEMPORALITY_PREFERENCES.get(preference)
    if temporalities is None:
        _log.warning(
            "Unrecognized %s value found: %s, using CUMULATIVE",
            OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
            preference,
        )
        temporalities = _TEMPORALITY_PREFERENCES["CUMULATIVE"]
    return dict(zip(_INSTRUMENTS, temporalities, strict=True))


def preferred_aggregation_from_env(
    environ: Mapping[str, str] | None = None,
) -> dict[type, Aggregation]:
    """The histogram aggregation that ``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``
    (``explicit_bucket_histogram`` by default, or ``base2_exponential_bucket_histogram``)
    asks of an OTLP metric exporter.

    The value is matched exactly (the SDK does not fold its case here); anything else logs
    one warning and means ``explicit_bucket_histogram``.
    """
    env = os.environ if environ is None else environ
    value = env.get(OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION)
    if value == "base2_exponential_bucket_histogram":
        return {Histogram: ExponentialBucketHistogramAggregation()}
    if value not in (None, "explicit_bucket_histogram"):
        _log.warning(
            "Invalid value for %s: %s, using explicit bucket histogram aggregation",
            OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION,
            value,
        )
    return {Histogram: ExplicitBucketHistogramAggregation()}
