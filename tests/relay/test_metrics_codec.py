"""The relay's metrics codec: the child's hand-written OTLP equals the SDK encoder's, the
host's decoding gives SDK data the SDK encodes back to the same message, broken payloads
are FrameError("malformed"), and the environment maps to the SDK exporter's preferences."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb2
from opentelemetry.sdk.metrics import (
    AlwaysOnExemplarFilter,
    Counter,
    Exemplar,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit.relay._metrics import (
    count_points,
    decode_metrics_request,
    encode_metrics_request,
    preferred_aggregation_from_env,
    preferred_temporality_from_env,
)
from otelkit.relay._wire import FrameError

DELTA, CUMULATIVE = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE
CHILD = Resource({"service.name": "child", "process.pid": 42}, "https://example.com/child")
INSTRUMENTS = (
    Counter,
    UpDownCounter,
    Histogram,
    ObservableCounter,
    ObservableUpDownCounter,
    ObservableGauge,
)
# Every attribute type the API allows.
ATTRIBUTES: dict[str, Any] = {
    "str": "a",
    "bool": True,
    "int": -7,
    "float": 1.5,
    "strs": ("x", "y"),
    "bools": (True, False),
    "ints": (1, -(2**63)),
    "floats": (0.25, -2.0),
}


def expected_request(data: MetricsData, resource: Resource) -> ExportMetricsServiceRequest:
    """The SDK encoder's message for ``data`` with every metric under ``resource``."""
    scopes = [sm for rm in data.resource_metrics for sm in rm.scope_metrics]
    return encode_metrics(MetricsData([ResourceMetrics(resource, scopes, resource.schema_url)]))


def assert_round_trips(data: MetricsData) -> bytes:
    payload = encode_metrics_request(data, CHILD)
    expected = expected_request(data, CHILD)
    assert ExportMetricsServiceRequest.FromString(payload) == expected
    assert encode_metrics(decode_metrics_request(payload)) == expected
    return payload


def sdk_collections(temporality: AggregationTemporality) -> Iterator[MetricsData]:
    """Two collections of every instrument kind from a real MeterProvider."""
    reader = InMemoryMetricReader(preferred_temporality=dict.fromkeys(INSTRUMENTS, temporality))
    provider = MeterProvider(
        resource=Resource({"service.name": "replaced"}),
        metric_readers=[reader],
        views=[
            View(
                instrument_name="exp.*",
                aggregation=ExponentialBucketHistogramAggregation(max_size=16),
            ),
            View(
                instrument_name="latency",
                aggregation=ExplicitBucketHistogramAggregation(boundaries=(0.1, 1.0, 10.0)),
            ),
            View(instrument_name="filtered", attribute_keys={"kept"}),
        ],
        exemplar_filter=AlwaysOnExemplarFilter(),
    )
    meter = provider.get_meter(
        "relay.test", "1.2", "https://example.com/scope", attributes={"scope.attr": "v"}
    )
    bare = provider.get_meter("bare")
    tracer = TracerProvider().get_tracer("test")

    def observe(value: float) -> Any:
        def callback(options: CallbackOptions) -> list[Observation]:
            return [Observation(value, ATTRIBUTES), Observation(value, {"other": 1})]

        return [callback]

    meter.create_observable_gauge("temperature", observe(21.5), unit="Cel")
    meter.create_observable_counter("faults", observe(12))
    meter.create_observable_up_down_counter("queue", observe(-3))
    counter = meter.create_counter("requests", description="requests served")
    floats = bare.create_counter("bytes", unit="By")
    updown = meter.create_up_down_counter("inflight")
    latency = meter.create_histogram("latency", unit="s")
    ints = bare.create_histogram("sizes")
    exp = meter.create_histogram("exp.latency")
    # Negative buckets: a histogram instrument takes no negative values, an up-down counter
    # aggregated as an exponential histogram does.
    exp_signed = meter.create_up_down_counter("exp.delta")
    gauge = meter.create_gauge("level")
    filtered = meter.create_counter("filtered")
    for round_ in range(2):
        with tracer.start_as_current_span("work"):
            counter.add(3 + round_, ATTRIBUTES)
            filtered.add(1, {"kept": "k", "dropped": round_})
        counter.add(2, {"other": 1})
        floats.add(1.25)
        updown.add(-4, ATTRIBUTES)
        updown.add(1)
        for value in (0.05, 0.5, 5.0, 50.0):
            latency.record(value, ATTRIBUTES)
        ints.record(3)
        ints.record(700)
        for value in (0.0, 0.001, 2.0, 1000.0):
            exp.record(value, ATTRIBUTES)
        for value in (-3.0, 0.0, 4.5):
            exp_signed.add(value, ATTRIBUTES)
        gauge.set(7 + round_, ATTRIBUTES)
        data = reader.get_metrics_data()
        assert data is not None
        yield data
    provider.shutdown()


def metrics_of(data: MetricsData) -> dict[str, Metric]:
    return {
        m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }


@pytest.mark.parametrize("temporality", [DELTA, CUMULATIVE])
def test_every_sdk_metric_kind_round_trips_to_the_sdk_encoders_message(
    temporality: AggregationTemporality,
) -> None:
    for data in sdk_collections(temporality):
        metrics = metrics_of(data)
        kinds = {type(m.data) for m in metrics.values()}
        assert kinds == {Sum, Gauge, HistogramData, ExponentialHistogram}
        assert isinstance(metrics["exp.delta"].data, ExponentialHistogram)
        exp_point = metrics["exp.delta"].data.data_points[0]
        assert exp_point.positive.bucket_counts and exp_point.negative.bucket_counts
        assert exp_point.zero_count >= 1
        assert {type(p.value) for p in metrics["requests"].data.data_points} == {int}  # type: ignore[union-attr]
        assert {type(p.value) for p in metrics["bytes"].data.data_points} == {float}  # type: ignore[union-attr]
        assert_round_trips(data)


def test_decoded_data_keeps_the_childs_resource_scope_and_temporality() -> None:
    data = next(sdk_collections(DELTA))
    decoded = decode_metrics_request(encode_metrics_request(data, CHILD))
    (resource_metrics,) = decoded.resource_metrics
    assert dict(resource_metrics.resource.attributes) == dict(CHILD.attributes)
    assert resource_metrics.resource.schema_url == CHILD.schema_url
    scopes = {sm.scope.name: sm.scope for sm in resource_metrics.scope_metrics}
    assert scopes["relay.test"].version == "1.2"
    assert scopes["relay.test"].schema_url == "https://example.com/scope"
    assert dict(scopes["relay.test"].attributes) == {"scope.attr": "v"}
    assert scopes["bare"].version is None
    requests = metrics_of(decoded)["requests"].data
    assert isinstance(requests, Sum)
    assert requests.aggregation_temporality is DELTA
    assert requests.is_monotonic
    assert count_points(decoded) == count_points(data)


def test_exemplars_survive_with_trace_context_and_filtered_attributes() -> None:
    data = next(sdk_collections(CUMULATIVE))
    decoded = metrics_of(decode_metrics_request(encode_metrics_request(data, CHILD)))
    original = metrics_of(data)
    for name in ("requests", "filtered", "latency", "exp.latency"):
        before = [e for p in original[name].data.data_points for e in p.exemplars]
        after = [e for p in decoded[name].data.data_points for e in p.exemplars]
        assert before, name
        assert [(e.value, e.time_unix_nano, e.span_id, e.trace_id) for e in after] == [
            (e.value, e.time_unix_nano, e.span_id, e.trace_id) for e in before
        ]
        assert [dict(e.filtered_attributes or {}) for e in after] == [
            dict(e.filtered_attributes or {}) for e in before
        ]
    traced = [e for p in decoded["requests"].data.data_points for e in p.exemplars if e.trace_id]
    assert traced
    (filtered,) = [e for p in decoded["filtered"].data.data_points for e in p.exemplars]
    assert filtered.filtered_attributes == {"dropped": 0}
    assert filtered.trace_id and filtered.span_id


def test_all_resource_metrics_are_merged_under_the_childs_resource() -> None:
    point = NumberDataPoint({}, 1, 2, 5)
    metric = Metric("m", None, None, Gauge([point]))
    scope_a = ScopeMetrics(InstrumentationScope("a"), [metric], "")
    scope_b = ScopeMetrics(InstrumentationScope("b"), [metric], "")
    data = MetricsData(
        [
            ResourceMetrics(Resource({"r": 1}), [scope_a], ""),
            ResourceMetrics(Resource({"r": 2}), [scope_b], ""),
        ]
    )
    request = ExportMetricsServiceRequest.FromString(encode_metrics_request(data, CHILD))
    (resource_metrics,) = request.resource_metrics
    assert [sm.scope.name for sm in resource_metrics.scope_metrics] == ["a", "b"]
    assert resource_metrics.resource.attributes[0].key == "service.name"
    assert_round_trips(data)


def test_metrics_without_points_are_left_out_and_empty_data_is_an_empty_request() -> None:
    empty = Metric("empty", None, None, Sum([], CUMULATIVE, True))
    data = MetricsData(
        [ResourceMetrics(CHILD, [ScopeMetrics(InstrumentationScope("s"), [empty], "")], "")]
    )
    assert encode_metrics_request(data, CHILD) == b""
    assert encode_metrics_request(MetricsData([]), CHILD) == b""
    assert decode_metrics_request(b"").resource_metrics == []
    assert count_points(MetricsData([])) == 0


def test_count_points_counts_the_data_points_of_every_metric() -> None:
    data = next(sdk_collections(CUMULATIVE))
    expected = sum(len(m.data.data_points) for m in metrics_of(data).values())
    assert count_points(data) == expected > 10


# --- hypothesis: hand-built SDK data covering the value ranges of every field -----------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
_int64 = st.integers(-(2**63), 2**63 - 1)
_uint64 = st.integers(0, 2**64 - 1)
_count = st.integers(0, 2**63 - 1)
_float = st.floats(allow_nan=False)
_scalar = st.one_of(_text, st.booleans(), _int64, _float)
_attribute_value = _scalar | st.one_of(
    *(st.lists(s, max_size=3).map(tuple) for s in (_text, st.booleans(), _int64, _float))
)
_attributes = st.dictionaries(_text, _attribute_value, max_size=4)
_ids = st.one_of(st.none(), st.tuples(_uint64, st.integers(0, 2**128 - 1)))
_temporality = st.sampled_from([DELTA, CUMULATIVE])


@st.composite
def _exemplar(draw: st.DrawFn) -> Exemplar:
    ids = draw(_ids)
    value = draw(_int64 | _float)
    span_id, trace_id = ids if ids else (None, None)
    return Exemplar(draw(_attributes), value, draw(_uint64), span_id, trace_id)


_exemplars = st.lists(_exemplar(), max_size=2)


@st.composite
def _number_point(draw: st.DrawFn) -> NumberDataPoint:
    return NumberDataPoint(
        draw(_attributes), draw(_uint64), draw(_uint64), draw(_int64 | _float), draw(_exemplars)
    )


@st.composite
def _histogram_point(draw: st.DrawFn) -> HistogramDataPoint:
    finite = st.floats(allow_nan=False, allow_infinity=False)
    bounds = sorted(draw(st.sets(finite, max_size=4)))
    counts = draw(st.lists(_count, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return HistogramDataPoint(
        draw(_attributes),
        draw(_uint64),
        draw(_uint64),
        draw(_count),
        draw(_float),
        counts,
        bounds,
        draw(_float),
        draw(_float),
        draw(_exemplars),
    )


_buckets = st.builds(Buckets, st.integers(-(2**31), 2**31 - 1), st.lists(_count, max_size=4))


@st.composite
def _exponential_point(draw: st.DrawFn) -> ExponentialHistogramDataPoint:
    return ExponentialHistogramDataPoint(
        attributes=draw(_attributes),
        start_time_unix_nano=draw(_uint64),
        time_unix_nano=draw(_uint64),
        count=draw(_count),
        sum=draw(_float),
        scale=draw(st.integers(-10, 20)),
        zero_count=draw(_count),
        positive=draw(_buckets),
        negative=draw(_buckets),
        flags=draw(st.integers(0, 2**32 - 1)),
        min=draw(_float),
        max=draw(_float),
        exemplars=draw(_exemplars),
    )


def _points(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(strategy, min_size=1, max_size=3)


_data = st.one_of(
    st.builds(Sum, _points(_number_point()), _temporality, st.booleans()),
    st.builds(Gauge, _points(_number_point())),
    st.builds(HistogramData, _points(_histogram_point()), _temporality),
    st.builds(ExponentialHistogram, _points(_exponential_point()), _temporality),
)
_metric = st.builds(Metric, _text, st.none() | _text, st.none() | _text, _data)


@st.composite
def _metrics_data(draw: st.DrawFn) -> MetricsData:
    # Scope names are unique: the SDK encoder keys scopes by (name, version, schema_url)
    # and would keep only the last of two equal ones.
    names = draw(st.lists(_text, min_size=1, max_size=3, unique=True))
    scopes = [
        ScopeMetrics(
            InstrumentationScope(
                name,
                draw(st.none() | _text),
                draw(st.none() | _text),
                draw(st.none() | _attributes),
            ),
            draw(st.lists(_metric, min_size=1, max_size=3)),
            "",
        )
        for name in names
    ]
    split = draw(st.integers(0, len(scopes)))
    resources = [scopes[:split], scopes[split:]]
    return MetricsData([ResourceMetrics(Resource({}), s, "") for s in resources if s])


@settings(max_examples=150, deadline=None)
@given(_metrics_data())
def test_any_sdk_metrics_data_round_trips_to_the_sdk_encoders_message(data: MetricsData) -> None:
    assert_round_trips(data)


# --- malformed payloads ------------------------------------------------------------------


def _request(*metrics: pb2.Metric) -> bytes:
    scope_metrics = pb2.ScopeMetrics(metrics=list(metrics))
    resource_metrics = pb2.ResourceMetrics(scope_metrics=[scope_metrics])
    return ExportMetricsServiceRequest(resource_metrics=[resource_metrics]).SerializeToString()


def _histogram(**fields: Any) -> pb2.Metric:
    point = {"count": 2, "sum": 1.0, "min": 0.0, "max": 1.0, **fields}
    return pb2.Metric(
        name="h",
        histogram=pb2.Histogram(
            data_points=[pb2.HistogramDataPoint(**point)], aggregation_temporality=2
        ),
    )


def _exponential(**fields: Any) -> pb2.Metric:
    point = {"count": 1, "sum": 1.0, "min": 1.0, "max": 1.0, **fields}
    return pb2.Metric(
        name="e",
        exponential_histogram=pb2.ExponentialHistogram(
            data_points=[pb2.ExponentialHistogramDataPoint(**point)], aggregation_temporality=1
        ),
    )


def _gauge(**fields: Any) -> pb2.Metric:
    point = {"as_int": 1, **fields}
    return pb2.Metric(name="g", gauge=pb2.Gauge(data_points=[pb2.NumberDataPoint(**point)]))


_MALFORMED = {
    "random bytes": b"\xff\xff\xff\xff\x0f",
    "invalid utf-8 in a name": _request(pb2.Metric(name="x")).replace(b"x", b"\xff"),
    "a metric without data": _request(pb2.Metric(name="empty")),
    "a metric without data points": _request(
        pb2.Metric(name="s", sum=pb2.Sum(aggregation_temporality=1))
    ),
    "a summary": _request(
        pb2.Metric(name="q", summary=pb2.Summary(data_points=[pb2.SummaryDataPoint(count=1)]))
    ),
    "unspecified temporality": _request(
        pb2.Metric(name="s", sum=pb2.Sum(data_points=[pb2.NumberDataPoint(as_int=1)]))
    ),
    "a point without a value": _request(_gauge(as_int=None)),
    "fewer bucket counts than bounds + 1": _request(
        _histogram(bucket_counts=[1, 1], explicit_bounds=[1.0, 2.0])
    ),
    "more bucket counts than bounds + 1": _request(
        _histogram(bucket_counts=[1, 1, 0], explicit_bounds=[1.0])
    ),
    "bucket counts without bounds": _request(_histogram(bucket_counts=[1, 1])),
    "a negative count": _request(_histogram(count=2**64 - 1)),
    "a negative bucket count": _request(
        _histogram(bucket_counts=[2**64 - 1, 3], explicit_bounds=[1.0])
    ),
    "a negative zero count": _request(_exponential(zero_count=2**63)),
    "a negative exponential bucket count": _request(
        _exponential(positive=pb2.ExponentialHistogramDataPoint.Buckets(bucket_counts=[2**63]))
    ),
    "a histogram without sum": _request(_histogram(sum=None)),
    "a histogram without min": _request(_exponential(min=None)),
    "a zero threshold": _request(_exponential(zero_threshold=0.5)),
    "a short exemplar span id": _request(
        _gauge(exemplars=[pb2.Exemplar(as_int=1, span_id=b"\x01", trace_id=b"\x01" * 16)])
    ),
    "an exemplar without a value": _request(_gauge(exemplars=[pb2.Exemplar(time_unix_nano=1)])),
}
if "string_value_strindex" in AnyValue.DESCRIPTOR.fields_by_name:  # newer opentelemetry-proto
    _MALFORMED["a string-table attribute"] = _request(
        _gauge(attributes=[KeyValue(key="k", value=AnyValue(string_value_strindex=1))])
    )


@pytest.mark.parametrize("payload", _MALFORMED.values(), ids=_MALFORMED.keys())
def test_a_broken_payload_is_a_malformed_frame_error(payload: bytes) -> None:
    with pytest.raises(FrameError) as raised:
        decode_metrics_request(payload)
    assert raised.value.reason == "malformed"


def test_every_truncation_of_a_valid_payload_is_a_malformed_frame_error() -> None:
    payload = assert_round_trips(next(sdk_collections(DELTA)))
    for end in range(1, len(payload), 7):
        with pytest.raises(FrameError) as raised:
            decode_metrics_request(payload[:end])
        assert raised.value.reason == "malformed"


def test_the_checks_accept_what_the_sdk_produces_at_their_limits() -> None:
    # Histograms without buckets and the largest int64 count are valid.
    payload = _request(_histogram(count=2**63 - 1), _exponential(zero_count=2**63 - 1))
    decoded = metrics_of(decode_metrics_request(payload))
    assert decoded["h"].data.data_points[0].bucket_counts == []  # type: ignore[union-attr]
    assert decoded["e"].data.data_points[0].zero_count == 2**63 - 1  # type: ignore[union-attr]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_only_frame_error(payload: bytes) -> None:
    outcome = "decoded"
    try:
        decode_metrics_request(payload)
    except FrameError as exc:  # any other exception fails the test
        outcome = exc.reason
    assert outcome in ("decoded", "malformed")


def _one_point_data(data: Any) -> MetricsData:
    metric = Metric("m", None, None, data)
    return MetricsData(
        [ResourceMetrics(CHILD, [ScopeMetrics(InstrumentationScope("s"), [metric], "")], "")]
    )


@pytest.mark.parametrize(
    "data",
    [
        HistogramData([HistogramDataPoint({}, 0, 1, -1, 0.0, [0], [], 0.0, 0.0)], DELTA),
        HistogramData([HistogramDataPoint({}, 0, 1, 1, 0.0, [-1], [], 0.0, 0.0)], DELTA),
        ExponentialHistogram(
            [
                ExponentialHistogramDataPoint(
                    {}, 0, 1, 1, 1.0, 0, 0, Buckets(0, [-1]), Buckets(0, []), 0, 1.0, 1.0
                )
            ],
            DELTA,
        ),
        Gauge([NumberDataPoint({}, 0, 1, 2**63)]),
        Sum([NumberDataPoint({}, -1, 1, 1)], DELTA, False),
    ],
    ids=[
        "negative count",
        "negative bucket",
        "negative exp bucket",
        "int beyond int64",
        "negative time",
    ],
)
def test_encoding_what_otlp_cannot_carry_raises_value_error(data: Any) -> None:
    with pytest.raises(ValueError, match=r"out of range|outside uint64"):
        encode_metrics_request(_one_point_data(data), CHILD)


# --- environment ---------------------------------------------------------------------------

_TABLE = {
    # Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter, ObservableGauge
    "cumulative": (CUMULATIVE,) * 6,
    "delta": (DELTA, CUMULATIVE, DELTA, DELTA, CUMULATIVE, CUMULATIVE),
    "lowmemory": (DELTA, CUMULATIVE, DELTA, CUMULATIVE, CUMULATIVE, CUMULATIVE),
}
_TEMPORALITY_ENV = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
_AGGREGATION_ENV = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"


@pytest.mark.parametrize("spelling", [str.lower, str.upper, lambda v: f" {v.title()} "])
@pytest.mark.parametrize("value", _TABLE)
def test_temporality_preference_maps_each_instrument_class_as_the_specification(
    value: str, spelling: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        mapping = preferred_temporality_from_env({_TEMPORALITY_ENV: spelling(value)})
    assert mapping == dict(zip(INSTRUMENTS, _TABLE[value], strict=True))
    assert not caplog.records


def test_temporality_defaults_to_cumulative_and_reads_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert preferred_temporality_from_env({}) == dict.fromkeys(INSTRUMENTS, CUMULATIVE)
    monkeypatch.setenv(_TEMPORALITY_ENV, "delta")
    assert preferred_temporality_from_env()[Counter] is DELTA


@pytest.mark.parametrize("value", ["sometimes", ""])
def test_an_unknown_temporality_warns_once_and_means_cumulative(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        mapping = preferred_temporality_from_env({_TEMPORALITY_ENV: value})
    assert mapping == dict.fromkeys(INSTRUMENTS, CUMULATIVE)
    (record,) = caplog.records
    assert record.name == "otelkit"
    assert _TEMPORALITY_ENV in record.getMessage()


def test_histogram_aggregation_preference_follows_the_sdk_exporter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        default = preferred_aggregation_from_env({})
        explicit = preferred_aggregation_from_env({_AGGREGATION_ENV: "explicit_bucket_histogram"})
        exponential = preferred_aggregation_from_env(
            {_AGGREGATION_ENV: "base2_exponential_bucket_histogram"}
        )
    assert not caplog.records
    assert list(default) == list(explicit) == list(exponential) == [Histogram]
    assert isinstance(default[Histogram], ExplicitBucketHistogramAggregation)
    assert isinstance(explicit[Histogram], ExplicitBucketHistogramAggregation)
    assert isinstance(exponential[Histogram], ExponentialBucketHistogramAggregation)


@pytest.mark.parametrize("value", ["bogus", "BASE2_EXPONENTIAL_BUCKET_HISTOGRAM"])
def test_an_unknown_histogram_aggregation_warns_once_and_means_explicit_buckets(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The SDK exporter matches this variable case-sensitively; so does the child.
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        mapping = preferred_aggregation_from_env({_AGGREGATION_ENV: value})
    assert isinstance(mapping[Histogram], ExplicitBucketHistogramAggregation)
    (record,) = caplog.records
    assert _AGGREGATION_ENV in record.getMessage()


# --- import cost ---------------------------------------------------------------------------


def test_importing_the_codec_loads_no_protobuf_metrics_classes() -> None:
    code = (
        "import sys, otelkit.relay._metrics\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.proto.metrics')"
        " or m.endswith('metrics_encoder')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
