"""OTLP metrics protobuf written straight from SDK ``MetricsData`` (the child's side).

Built with :mod:`otelkit.export`'s protobuf writer, so a child never imports the
``opentelemetry.proto`` message classes (the SDK's ``encode_metrics`` would cost it ~65 ms
of start-up). Fields are written in field-number order; proto3 scalars without presence
are left out when zero, as the SDK's encoder does; ``optional`` fields (histogram
sum/min/max) and oneof values are always written.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit.export._protobuf import attributes, varint
from otelkit.relay._encode import encode_resource, encode_scope

__all__ = ["encode_metrics_request"]

P = TypeVar("P")


_SFIXED64 = struct.Struct("<q").pack
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_TRACE_ID = struct.Struct(">QQ").pack
_SPAN_ID = struct.Struct(">Q").pack
_U64 = (1 << 64) - 1


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field whose key ``tag`` is already encoded."""
    return tag + varint(len(payload)) + payload


_INT32 = range(-(2**31), 2**31)


def encode_metrics_request(data: MetricsData, resource: Resource) -> bytes:
    """The bytes of an OTLP ``ExportMetricsServiceRequest`` for ``data``, every metric under
    ``resource`` (the child's identity, in place of each ``ResourceMetrics``' own).

    Scopes that occur under several resources are merged; metrics without data points are
    left out. Raises :class:`ValueError` for what OTLP cannot carry (a negative count, an
    integer value outside int64, an unknown data type).
    """
    scopes: dict[tuple[bytes, str], list[bytes]] = {}
    try:
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                metrics = [_field(b"\x12", m) for m in map(_metric, scope_metrics.metrics) if m]
                if metrics:
                    scopes.setdefault(_scope_key(scope_metrics.scope), []).extend(metrics)
    except (struct.error, OverflowError) as exc:  # a value outside its protobuf type
        raise ValueError(f"metric value out of range: {exc}") from exc
    if not scopes:
        return b""
    parts = [_field(b"\x0a", encode_resource(resource))]
    for (scope, schema_url), metrics in scopes.items():
        body = _field(b"\x0a", scope) + b"".join(metrics) + _str_field(b"\x1a", schema_url)
        parts.append(_field(b"\x12", body))
    parts.append(_str_field(b"\x1a", resource.schema_url))
    return _field(b"\x0a", b"".join(parts))


def _scope_key(scope: InstrumentationScope | None) -> tuple[bytes, str]:
    """The encoded ``InstrumentationScope`` and the scope's schema URL (the SDK's encoder
    takes the schema URL from the scope, not from ``ScopeMetrics``)."""
    if scope is None:
        return b"", ""
    body = encode_scope(scope.name, scope.version) + attributes(3, scope.attributes)
    return body, scope.schema_url or ""


def _str_field(tag: bytes, value: str | None) -> bytes:
    return _field(tag, value.encode()) if value else b""


def _fixed64(tag: bytes, value: int | None) -> bytes:
    return tag + _FIXED64(value) if value else b""


def _varint_field(tag: bytes, value: int) -> bytes:
    if value < 0:
        raise ValueError(f"negative value {value} for an unsigned field")
    return tag + varint(value) if value else b""


def _sint32_field(tag: bytes, value: int, what: str) -> bytes:
    if value not in _INT32:
        raise ValueError(f"{what} {value} is outside int32")
    return tag + varint((value << 1) ^ (value >> 31)) if value else b""  # zigzag


def _metric(metric: Metric) -> bytes:
    """A ``Metric`` message body, or ``b""`` for a metric without data points."""
    data = metric.data
    if not data.data_points:
        return b""
    head = (
        _str_field(b"\x0a", metric.name)
        + _str_field(b"\x12", metric.description)
        + _str_field(b"\x1a", metric.unit)
    )
    if isinstance(data, Sum):
        body = _points(data.data_points, _sum_point)
        body += _varint_field(b"\x10", data.aggregation_temporality)
        return head + _field(b"\x3a", body + (b"\x18\x01" if data.is_monotonic else b""))
    if isinstance(data, Gauge):
        return head + _field(b"\x2a", _points(data.data_points, _gauge_point))
    if isinstance(data, Histogram):
        body = _points(data.data_points, _histogram_point)
        return head + _field(b"\x4a", body + _varint_field(b"\x10", data.aggregation_temporality))
    if isinstance(data, ExponentialHistogram):
        body = _points(data.data_points, _exponential_point)
        return head + _field(b"\x52", body + _varint_field(b"\x10", data.aggregation_temporality))
    raise ValueError(f"metric {metric.name!r}: unsupported data type {type(data).__name__}")


def _points(points: Iterable[P], encode: Callable[[P], bytes]) -> bytes:
    """Repeated ``data_points`` fields (field 1 in every data message)."""
    return b"".join(_field(b"\x0a", encode(p)) for p in points)


def _attributes(attrs: Mapping[str, Any] | None, number: int) -> bytes:
    return attributes(number, attrs)


def _exemplars(exemplars: Sequence[Exemplar], tag: bytes) -> bytes:
    out = []
    for ex in exemplars:
        value = ex.value
        if isinstance(value, float):
            as_double, as_int = b"\x19" + _DOUBLE(value), b""
        elif isinstance(value, int):
            as_double, as_int = b"", b"\x31" + _SFIXED64(value)
        else:
            raise ValueError(f"exemplar value must be an int or a float, not {type(value)}")
        ids = b""
        if ex.span_id is not None and ex.trace_id is not None:  # both or none, as the SDK
            trace_id = ex.trace_id
            ids = b"\x22\x08" + _SPAN_ID(ex.span_id)
            ids += b"\x2a\x10" + _TRACE_ID(trace_id >> 64, trace_id & _U64)
        body = _fixed64(b"\x11", ex.time_unix_nano) + as_double + ids + as_int
        out.append(_field(tag, body + _attributes(ex.filtered_attributes, 7)))
    return b"".join(out)


def _sum_point(p: NumberDataPoint) -> bytes:
    return _fixed64(b"\x11", p.start_time_unix_nano) + _gauge_point(p)


def _gauge_point(p: NumberDataPoint) -> bytes:
    # No start time: the SDK's encoder writes none for gauges (its gauges have none).
    value = p.value
    if isinstance(value, int):  # bool included, as the SDK's encoder does
        as_double, as_int = b"", b"\x31" + _SFIXED64(value)
    else:
        as_double, as_int = b"\x21" + _DOUBLE(value), b""
    return (
        _fixed64(b"\x19", p.time_unix_nano)
        + as_double
        + _exemplars(p.exemplars, b"\x2a")
        + as_int
        + _attributes(p.attributes, 7)
    )


def _counts(counts: Sequence[int], what: str) -> Sequence[int]:
    # Checked here: ``varint`` would silently mis-encode a negative or oversized count.
    if counts and (min(counts) < 0 or max(counts) > _U64):
        raise ValueError(f"{what} has a count outside uint64")
    return counts


def _histogram_point(p: HistogramDataPoint) -> bytes:
    counts = _counts(p.bucket_counts, "histogram")
    bounds = p.explicit_bounds
    return b"".join(
        (
            _fixed64(b"\x11", p.start_time_unix_nano),
            _fixed64(b"\x19", p.time_unix_nano),
            _fixed64(b"\x21", p.count),
            b"\x29" + _DOUBLE(p.sum),
            _field(b"\x32", struct.pack(f"<{len(counts)}Q", *counts)) if counts else b"",
            _field(b"\x3a", struct.pack(f"<{len(bounds)}d", *bounds)) if bounds else b"",
            _exemplars(p.exemplars, b"\x42"),
            _attributes(p.attributes, 9),
            b"\x59" + _DOUBLE(p.min),
            b"\x61" + _DOUBLE(p.max),
        )
    )


def _buckets(tag: bytes, buckets: Buckets) -> bytes:
    counts = _counts(buckets.bucket_counts, "exponential histogram")
    if not counts:  # the SDK's encoder leaves empty buckets out, whatever their offset
        return b""
    offset = _sint32_field(b"\x08", buckets.offset, "bucket offset")
    return _field(tag, offset + _field(b"\x12", b"".join(varint(c) for c in counts)))


def _exponential_point(p: ExponentialHistogramDataPoint) -> bytes:
    return b"".join(
        (
            _attributes(p.attributes, 1),
            _fixed64(b"\x11", p.start_time_unix_nano),
            _fixed64(b"\x19", p.time_unix_nano),
            _fixed64(b"\x21", p.count),
            b"\x29" + _DOUBLE(p.sum),
            _sint32_field(b"\x30", p.scale, "scale"),
            _fixed64(b"\x39", p.zero_count),
            _buckets(b"\x42", p.positive),
            _buckets(b"\x4a", p.negative),
            _varint_field(b"\x50", p.flags),
            _exemplars(p.exemplars, b"\x5a"),
            b"\x61" + _DOUBLE(p.min),
            b"\x69" + _DOUBLE(p.max),
        )
    )
