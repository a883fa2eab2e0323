"""The host's decoder: its fast record construction equals the SDK constructors' output."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import (
    LogRecordDroppedAttributesWarning,
    LogRecordLimits,
    ReadWriteLogRecord,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import get_current_span

from otelkit._sdk import FALLBACKS_FORCED
from otelkit._sdk.logs import attribute_limits
from otelkit.relay import _records
from otelkit.relay._decode import Decoder
from otelkit.relay._encode import encode_log_request, encode_resource

RESOURCE = encode_resource(Resource({"service.name": "child", "process.pid": 7}))

_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=80)
    | st.binary(max_size=10)
)
_values = st.recursive(
    st.none() | _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)
_entries = st.tuples(
    st.integers(min_value=0, max_value=2**64 - 1),  # time
    st.integers(min_value=0, max_value=2**64 - 1),  # observed time (0: the host fills it)
    st.integers(min_value=0, max_value=24),  # severity number
    st.none() | st.sampled_from(["INFO", "WARN", "ERROR", ""]),
    _values,  # body
    st.none() | st.dictionaries(st.text(max_size=6), _values, max_size=5),
    st.integers(min_value=0, max_value=2**128 - 1),  # trace id
    st.integers(min_value=0, max_value=2**64 - 1),  # span id
    st.integers(min_value=0, max_value=255),  # flags
    st.sampled_from(["scope.a", "scope.b"]),
    st.none() | st.just("1.0"),
    st.none() | st.text(min_size=1, max_size=8),  # event name
    st.integers(min_value=0, max_value=3),  # dropped attributes
)


def _view(record: ReadWriteLogRecord) -> dict[str, Any]:
    """Every field a processor or exporter can read, as plain values."""
    lr = record.log_record
    fields = dict(vars(lr))
    attributes = fields.pop("attributes")
    context = fields.pop("context")
    fields.pop("observed_timestamp")  # compared separately: may be filled with the time now
    return {
        "record_fields": fields,
        "attribute_items": list(attributes.items()),
        "attribute_state": {k: v for k, v in vars(attributes).items() if k != "_lock"},
        "attribute_type": type(attributes),
        "span_context": get_current_span(context).get_span_context(),
        "resource": record.resource,
        "scope": record.instrumentation_scope,
        "limits": repr(record.limits),
        "dropped": record.dropped_attributes,
        "types": (type(record), type(lr)),
    }


def _assert_same(fast: list[ReadWriteLogRecord], slow: list[ReadWriteLogRecord]) -> None:
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        assert _view(a) == _view(b)
        # The SDK's batch processor queues a shallow copy: it must carry every field.
        assert vars(copy.copy(a.log_record)) == vars(a.log_record)
        assert isinstance(a.log_record, LogRecord)
        stamps = (a.log_record.observed_timestamp, b.log_record.observed_timestamp)
        assert all(isinstance(stamp, int) and stamp > 0 for stamp in stamps)


def test_the_fast_path_is_in_use_with_this_sdk() -> None:
    assert _records.FAST_OK is not FALLBACKS_FORCED


@settings(max_examples=200, deadline=None)
@given(st.lists(_entries, min_size=1, max_size=6))
def test_fast_records_equal_the_sdk_constructors_records_field_by_field(
    entries: list[Any],
) -> None:
    payload = encode_log_request(RESOURCE, entries)
    with warnings.catch_warnings():  # the SDK warns when it drops an empty attribute key
        warnings.simplefilter("ignore", LogRecordDroppedAttributesWarning)
        fast = Decoder().logs(payload)
        slow = Decoder(fast=False).logs(payload)
    _assert_same(fast, slow)
    sent = {entry[1] for entry in entries if entry[1]}
    assert sent <= {record.log_record.observed_timestamp for record in fast}


@pytest.mark.parametrize(
    "limits",
    [
        # The general limits, which every supported SDK applies to log records (newer
        # releases through max_log_record_*, which default to them).
        LogRecordLimits(max_attributes=2),
        LogRecordLimits(max_attribute_length=3),
        LogRecordLimits(max_attributes=0),
    ],
)
def test_host_limits_still_apply_to_relayed_records(limits: LogRecordLimits) -> None:
    attributes = {"a": "long value", "b": 2, "c": True, "": "no key"}
    entry = (1, 2, 9, "INFO", "body", attributes, 0, 0, 0, "s", None, None, 0)
    payload = encode_log_request(RESOURCE, [entry])
    # The SDK may warn when its limits drop attributes (which releases warn differ).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LogRecordDroppedAttributesWarning)
        slow = Decoder(limits=limits, fast=False).logs(payload)
        fast = Decoder(limits=limits).logs(payload)
    _assert_same(fast, slow)
    kept = dict(fast[0].log_record.attributes or {})
    assert kept.get("") is None  # its value is dropped (SDK 1.40 keeps the empty key)
    max_attributes, max_length = attribute_limits(limits)
    assert len(kept) <= (max_attributes or 3)
    if max_length is not None:
        assert kept["a"] == "lon"


def test_our_batch_processor_exports_relayed_records_as_the_sdks_does_without_a_copy() -> None:
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor as SdkBatch
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

    from otelkit._batch import BatchLogRecordProcessor

    entries = [
        (1, 2, 9, "INFO", "first", {"k": 1}, 0, 0, 0, "s", None, None, 0),
        (3, 4, 17, "ERROR", "second", {"k": "v"}, 5, 6, 1, "s", "1.0", "ev", 1),
    ]
    payload = encode_log_request(RESOURCE, entries)
    exported = []
    for processor_class in (BatchLogRecordProcessor, SdkBatch):
        exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        processor = processor_class(exporter)
        records = Decoder().logs(payload)
        for record in records:
            processor.on_emit(record)
        processor.force_flush(5000)
        finished = exporter.get_finished_logs()
        exported.append([r.to_json() for r in finished])
        if processor_class is BatchLogRecordProcessor:  # queued as they are
            assert all(a.log_record is b.log_record for a, b in zip(finished, records, strict=True))
        processor.shutdown()  # type: ignore[no-untyped-call]
    assert exported[0] == exported[1]


def test_count_spans_counts_what_spans_decodes_without_building_them() -> None:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, TraceFlags

    from otelkit.relay._encode import encode_span_request

    spans = [
        ReadableSpan(
            f"s{i}",
            context=SpanContext(1, i + 1, False, TraceFlags(1)),
            resource=Resource({}),
            start_time=1,
            end_time=2,
        )
        for i in range(5)
    ]
    payload = encode_span_request(RESOURCE, spans)
    assert Decoder().count_spans(payload) == len(Decoder().spans(payload)) == 5
    with pytest.raises(Exception, match="protobuf"):
        Decoder().count_spans(b"\xff\xff not protobuf")
