"""SDK ``MetricsData`` rebuilt from OTLP metrics protobuf (the host's side).

Parsed with the ``opentelemetry.proto`` classes, imported on first use so that importing
this module (as :mod:`otelkit.relay._metrics` does in a child) stays cheap. Every failure
becomes ``FrameError("malformed", ...)``. OTLP fields the SDK model cannot carry
(``zero_threshold``, a histogram without ``sum``/``min``/``max``) are rejected rather than
silently given another meaning; the child's encoder never writes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit.relay._wire import FrameError

__all__ = ["decode_metrics_request"]


_TEMPORALITIES = {
    AggregationTemporality.DELTA.value: AggregationTemporality.DELTA,
    AggregationTemporality.CUMULATIVE.value: AggregationTemporality.CUMULATIVE,
}
# OTLP counts are unsigned; a sender's negative int64 count arrives as 2**63 or more, which
# no real histogram reaches.
_MAX_COUNT = 2**63 - 1


def decode_metrics_request(payload: bytes) -> MetricsData:
    """The SDK ``MetricsData`` of an ``ExportMetricsServiceRequest`` payload.

    Raises :class:`~otelkit.relay._wire.FrameError` (reason ``malformed``) for bytes that
    do not parse or describe broken metrics: a metric without data or data points, a kind
    the SDK has no type for (summary), a data point without a value, an unspecified
    temporality, a negative count, bucket counts that do not fit the bounds, ids of the
    wrong length, and fields the SDK model cannot carry.
    """
    # Imported on first use: a child that only encodes never loads the protobuf classes.
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    from otelkit.relay._decode import _parse

    request = _parse(ExportMetricsServiceRequest, payload)
    try:
        return MetricsData([_decode_resource_metrics(rm) for rm in request.resource_metrics])
    except FrameError:
        raise
    except Exception as exc:
        raise FrameError("malformed", f"undecodable metrics: {exc}") from exc


def _kv(key_values: Any) -> dict[str, Any]:
    # Imported here: _decode loads the log and trace protobuf classes (host side only).
    from otelkit.relay._decode import _attributes as decode_attributes

    return decode_attributes(key_values)


def _decode_resource_metrics(pb: Any) -> ResourceMetrics:
    resource = Resource(_kv(pb.resource.attributes), pb.schema_url)
    scopes = [
        ScopeMetrics(
            scope=InstrumentationScope(
                sm.scope.name,
                sm.scope.version or None,
                sm.schema_url or None,
                _kv(sm.scope.attributes) or None,
            ),
            metrics=[_decode_metric(m) for m in sm.metrics],
            schema_url=sm.schema_url,
        )
        for sm in pb.scope_metrics
    ]
    return ResourceMetrics(resource=resource, scope_metrics=scopes, schema_url=pb.schema_url)


def _malformed(metric: Any, what: str) -> FrameError:
    return FrameError("malformed", f"metric {metric.name!r}: {what}")


def _decode_metric(pb: Any) -> Metric:
    kind = pb.WhichOneof("data")
    if kind is None:
        raise _malformed(pb, "no data")
    if kind not in ("sum", "gauge", "histogram", "exponential_histogram"):
        raise _malformed(pb, f"{kind} data has no SDK type")
    pb_data = getattr(pb, kind)
    points = pb_data.data_points
    if not points:
        raise _malformed(pb, "no data points")
    data: Sum | Gauge | Histogram | ExponentialHistogram
    if kind == "gauge":
        data = Gauge([_decode_number(p, pb) for p in points])
    else:
        temporality = _TEMPORALITIES.get(pb_data.aggregation_temporality)
        if temporality is None:
            raise _malformed(pb, f"temporality {pb_data.aggregation_temporality}")
        if kind == "sum":
            data = Sum([_decode_number(p, pb) for p in points], temporality, pb_data.is_monotonic)
        elif kind == "histogram":
            data = Histogram([_decode_histogram(p, pb) for p in points], temporality)
        else:
            data = ExponentialHistogram([_decode_exponential(p, pb) for p in points], temporality)
    return Metric(name=pb.name, description=pb.description, unit=pb.unit, data=data)


def _decode_exemplars(pbs: Any, metric: Any) -> list[Exemplar]:
    from otelkit.relay._decode import _id

    out = []
    for e in pbs:
        kind = e.WhichOneof("value")
        if kind is None:
            raise _malformed(metric, "an exemplar without a value")
        span_id = _id(e.span_id, 8, "exemplar span_id") if e.span_id else None
        trace_id = _id(e.trace_id, 16, "exemplar trace_id") if e.trace_id else None
        value = e.as_int if kind == "as_int" else e.as_double
        attributes = _kv(e.filtered_attributes)
        out.append(Exemplar(attributes, value, e.time_unix_nano, span_id, trace_id))
    return out


def _decode_number(p: Any, metric: Any) -> NumberDataPoint:
    kind = p.WhichOneof("value")
    if kind is None:
        raise _malformed(metric, "a data point without a value")
    return NumberDataPoint(
        attributes=_kv(p.attributes),
        start_time_unix_nano=p.start_time_unix_nano,
        time_unix_nano=p.time_unix_nano,
        value=p.as_int if kind == "as_int" else p.as_double,
        exemplars=_decode_exemplars(p.exemplars, metric),
    )


def _check_counts(p: Any, metric: Any, counts: Iterable[int]) -> None:
    if max((p.count, *counts)) > _MAX_COUNT:
        raise _malformed(metric, "a negative (or int64-overflowing) count")
    for name in ("sum", "min", "max"):
        if not p.HasField(name):  # the SDK model has no "unknown" for these
            raise _malformed(metric, f"a histogram data point without {name}")


def _decode_histogram(p: Any, metric: Any) -> HistogramDataPoint:
    counts, bounds = list(p.bucket_counts), list(p.explicit_bounds)
    if (counts or bounds) and len(counts) != len(bounds) + 1:
        raise _malformed(metric, f"{len(counts)} bucket counts for {len(bounds)} bounds")
    _check_counts(p, metric, counts)
    return HistogramDataPoint(
        attributes=_kv(p.attributes),
        start_time_unix_nano=p.start_time_unix_nano,
        time_unix_nano=p.time_unix_nano,
        count=p.count,
        sum=p.sum,
        bucket_counts=counts,
        explicit_bounds=bounds,
        min=p.min,
        max=p.max,
        exemplars=_decode_exemplars(p.exemplars, metric),
    )


def _decode_exponential(p: Any, metric: Any) -> ExponentialHistogramDataPoint:
    if p.zero_threshold:
        raise _malformed(metric, "zero_threshold, which the SDK model cannot carry")
    positive = Buckets(p.positive.offset, list(p.positive.bucket_counts))
    negative = Buckets(p.negative.offset, list(p.negative.bucket_counts))
    _check_counts(p, metric, (p.zero_count, *positive.bucket_counts, *negative.bucket_counts))
    return ExponentialHistogramDataPoint(
        attributes=_kv(p.attributes),
        start_time_unix_nano=p.start_time_unix_nano,
        time_unix_nano=p.time_unix_nano,
        count=p.count,
        sum=p.sum,
        scale=p.scale,
        zero_count=p.zero_count,
        positive=positive,
        negative=negative,
        flags=p.flags,
        min=p.min,
        max=p.max,
        exemplars=_decode_exemplars(p.exemplars, metric),
    )
