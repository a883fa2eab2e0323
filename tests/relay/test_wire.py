"""Wire format: the address, the handshake, the frame decoder and the log frames (OTLP)."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource

from otelkit._logmapping import exception_attributes
from otelkit.relay import RelayAddress
from otelkit.relay._decode import Decoder
from otelkit.relay._encode import encode_log_request, encode_resource, entry_from_sdk
from otelkit.relay._wire import (
    FRAME_DROPS,
    FRAME_LOGS,
    VERSION,
    FrameDecoder,
    FrameError,
    check_handshake,
    decode_drops,
    encode_drops,
    encode_frame,
    encode_handshake,
)
from otelkit.testing import MemoryTelemetry

TOKEN = bytes(range(16))


def test_address_round_trips_through_the_env_value_and_hides_the_token() -> None:
    address = RelayAddress.generate("/tmp/some:dir/relay.sock")
    assert RelayAddress.parse(address.env_value()) == address
    assert address.token.hex() not in repr(address)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must look like"),
        ("1:abcd", "must look like"),
        (f"{VERSION - 1}:" + "00" * 16 + ":/x", "version"),
        (f"{VERSION + 1}:" + "00" * 16 + ":/x", "version"),
        (f"{VERSION}:zz:/x", "hexadecimal"),
        (f"{VERSION}:abcd:/x", "16 bytes"),
    ],
)
def test_bad_env_values_are_refused_with_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RelayAddress.parse(value)


def test_handshake_with_wrong_token_or_version_is_refused() -> None:
    check_handshake(encode_handshake(TOKEN), TOKEN)
    with pytest.raises(FrameError) as wrong:
        check_handshake(encode_handshake(bytes(16)), TOKEN)
    assert wrong.value.reason == "token"
    bad_version = bytearray(encode_handshake(TOKEN))
    bad_version[4] = 99
    with pytest.raises(FrameError) as version:
        check_handshake(bytes(bad_version), TOKEN)
    assert version.value.reason == "version"


def test_decoder_returns_frames_split_at_any_byte_boundary() -> None:
    stream = encode_frame(FRAME_LOGS, b"abc") + encode_drops(3, 4) + encode_frame(FRAME_LOGS, b"")
    decoder = FrameDecoder(max_frame_bytes=100)
    frames = [frame for byte in stream for frame in decoder.feed(bytes([byte]))]
    assert frames == [
        (FRAME_LOGS, b"abc"),
        (FRAME_DROPS, encode_drops(3, 4)[5:]),
        (FRAME_LOGS, b""),
    ]
    assert decode_drops(frames[1][1]) == (3, 4, 0)
    assert decoder.pending_bytes == 0


def test_oversized_frame_is_refused_before_its_payload_is_buffered() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    with pytest.raises(FrameError) as exc:
        decoder.feed(encode_frame(FRAME_LOGS, b"x" * 11)[:5])
    assert exc.value.reason == "oversized"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=97))
def test_decoder_on_garbage_returns_frames_or_raises_frame_error(data: bytes, chunk: int) -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)
    reason = None
    try:
        for start in range(0, len(data), chunk):
            for _, payload in decoder.feed(data[start : start + chunk]):
                assert len(payload) <= 1024
    except FrameError as exc:
        reason = exc.reason
    assert reason in {None, "oversized", "frame_type"}
    assert decoder.pending_bytes <= 1024 + 5 + chunk


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _sdk_record(body: Any, attributes: dict[str, Any]) -> ReadWriteLogRecord:
    telemetry = MemoryTelemetry(resource=Resource({"service.name": "enc"}))
    logger = telemetry.logger_provider.get_logger("scope.a", "1.2")
    logger.emit(
        body=body,
        attributes=attributes,
        severity_text="WARN",
        timestamp=123,
        observed_timestamp=456,
    )
    record = telemetry.logs()[0]
    telemetry.shutdown()
    return ReadWriteLogRecord(record.log_record, record.resource, record.instrumentation_scope)


def _relayed(record: ReadWriteLogRecord) -> ReadableLogRecord:
    """``record`` as the host exports it: the child's entry, through a log frame, rebuilt by
    the host's decoder."""
    payload = encode_log_request(encode_resource(record.resource), [entry_from_sdk(record)])
    (relayed,) = Decoder().logs(payload)
    return ReadableLogRecord(
        relayed.log_record, relayed.resource, relayed.instrumentation_scope, relayed.limits
    )


@settings(max_examples=150, deadline=None)
@given(_values, st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=4))
def test_a_relayed_record_exports_as_the_original_would(body: Any, attributes: Any) -> None:
    record = _sdk_record(body, attributes)
    ours = encode_logs([_relayed(record)])
    sdk = encode_logs([record])
    # None is an empty AnyValue or no AnyValue at all (SDK 1.40): the same to OTLP.
    assert _without_empty_values(ours) == _without_empty_values(sdk)


def _without_empty_values(message: Any) -> Any:
    """``message`` with every unset ``AnyValue`` field (``body``, ``value``) cleared."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        single = isinstance(value, Message)
        if single and field.message_type.name == "AnyValue" and not value.WhichOneof("value"):
            message.ClearField(field.name)
            continue
        for item in [value] if single else value:
            _without_empty_values(item)
    return message


def test_a_relayed_record_keeps_trace_context_severity_and_exception_attributes() -> None:
    telemetry = MemoryTelemetry()
    tracer = telemetry.tracer_provider.get_tracer("t")
    logger = telemetry.logger_provider.get_logger("scope.b")
    with tracer.start_as_current_span("s"):
        try:
            raise KeyError("gone")
        except KeyError as exc:
            logger.emit(
                body="failed",
                severity_number=logging_severity(),
                attributes=exception_attributes(exc),
            )
    record = telemetry.logs()[0]
    rw = ReadWriteLogRecord(record.log_record, record.resource, record.instrumentation_scope)
    ours = encode_logs([_relayed(rw)])
    assert ours == encode_logs([rw])
    pb = ours.resource_logs[0].scope_logs[0].log_records[0]
    assert pb.trace_id and pb.span_id and pb.severity_number == 17
    assert {kv.key for kv in pb.attributes} >= {"exception.type", "exception.stacktrace"}
    telemetry.shutdown()


def logging_severity() -> Any:
    from opentelemetry._logs import SeverityNumber

    return SeverityNumber.ERROR


@settings(max_examples=60, deadline=None)
@given(
    st.text(min_size=40, max_size=300),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=100),
)
def test_a_relayed_record_keeps_long_bodies_and_ints_of_every_size(
    body: str, number: int, text: str
) -> None:
    record = _sdk_record(body, {"n": number, "t": text})
    assert encode_logs([_relayed(record)]) == encode_logs([record])


class _Odd:
    def __str__(self) -> str:
        return "odd"


class _Level(int):
    pass


def test_values_otlp_has_no_type_for_arrive_as_the_export_encoder_carries_them() -> None:
    # A body of another type travels as its text; an attribute OTLP cannot carry is left
    # out with its key, as otelkit's (and the SDK's) OTLP encoder does.
    entry = (1, 2, 9, "INFO", _Odd(), {"e": _Level(3), "o": _Odd(), "big": 2**64 + 5}, 0, 0)
    entry += (0, "s", None, None, 0)
    (record,) = Decoder().logs(encode_log_request(encode_resource(Resource({})), [entry]))
    assert record.log_record.body == "odd"
    assert dict(record.log_record.attributes or {}) == {"e": 3}
