"""Hostile log frames: each costs the host memory in proportion to its size, closes only
its own connection with a counted frame error, and never stalls the other children."""

from __future__ import annotations

import pickle
import struct
import sys
import tracemalloc

import pytest
from opentelemetry.sdk.resources import Resource

from otelkit.export._protobuf import field_bytes, varint
from otelkit.relay import RelayHost
from otelkit.relay._decode import Decoder
from otelkit.relay._encode import encode_log_request, encode_resource
from otelkit.relay._wire import (
    FRAME_LOGS,
    HEADER_SIZE,
    FrameError,
    encode_frame,
)
from otelkit.testing import MemoryTelemetry, wait_until

from .raw_peer import authed, closed_by_peer

RESOURCE = encode_resource(Resource({"service.name": "hostile"}))


def _entry(body: object) -> tuple[object, ...]:
    return (1, 2, 9, "INFO", body, None, 0, 0, 0, "s", None, None, 0)


def _request_with_body(any_value: bytes) -> bytes:
    """An ``ExportLogsServiceRequest`` of one record whose body is ``any_value``'s bytes."""
    return _request(field_bytes(5, any_value))  # LogRecord.body


def _request(record: bytes) -> bytes:
    """An ``ExportLogsServiceRequest`` of one record (a ``LogRecord`` message's bytes)."""
    scope_logs = field_bytes(2, record)  # ScopeLogs.log_records
    resource_logs = field_bytes(1, RESOURCE) + field_bytes(2, scope_logs)
    return field_bytes(1, resource_logs)


def _nested_arrays(depth: int) -> bytes:
    value = b""
    for _ in range(depth):
        value = field_bytes(5, field_bytes(1, value))  # AnyValue.array_value.values[0]
    return value


def _nested_kvlists(depth: int) -> bytes:
    value = b""
    for _ in range(depth):
        key_value = field_bytes(1, b"k") + field_bytes(2, value)
        value = field_bytes(6, field_bytes(1, key_value))  # AnyValue.kvlist_value.values[0]
    return value


def _old_pickle_frame() -> bytes:
    """The version-4 log frame the relay used to accept: pickled columns whose severity
    text is one tuple referred to twice at each of 21 levels (2**21 strings from 166 bytes)."""
    shared: object = "x"
    for _ in range(21):
        shared = (shared, shared)
    words = bytes(8)
    columns = (1, words, words, words, words, b"", b"\x09", b"\x00", (shared,))
    columns += ((("b",), (None,), ("s",), (None,), (None,)),)
    payload = struct.pack("!I", 0) + pickle.dumps(columns, protocol=5)
    return encode_frame(FRAME_LOGS, payload)


GOOD = encode_log_request(RESOURCE, [_entry("fine")])
HOSTILE: dict[str, bytes] = {
    "arrays nested 10,000 deep": _request_with_body(_nested_arrays(10_000)),
    "key-value lists nested 5,000 deep": _request_with_body(_nested_kvlists(5_000)),
    "a length of 2**40 inside the message": field_bytes(1, b"\x0a" + varint(1 << 40) + b"x"),
    "a length of 2**63 inside the message": b"\x0a" + varint(1 << 63) + b"xyz",
    "a truncated request": GOOD[: len(GOOD) // 2],
    "a request cut one byte short": GOOD[:-1],
    "wrong wire types": b"\x0d\x00\x00\x00\x00" + b"\x09" * 16,
    "random bytes": bytes(range(256)) * 16,
    "an invalid field number 0": b"\x02\x03abc",
    "the old nested-reference pickle frame": _old_pickle_frame()[HEADER_SIZE:],
}
# A record with a 3-byte trace id (field 9), and one with severity number 99 (field 2:
# OTLP enums are open, so the parser takes it).
HOSTILE["a trace id of 3 bytes"] = _request(field_bytes(9, b"abc"))
HOSTILE["severity number 99"] = _request(b"\x10" + varint(99))


def _cost(payload: bytes) -> tuple[object, int, int]:
    """``Decoder().log_rows(payload)`` (its rows, or the exception it raised), the peak of
    Python allocations while it ran, and the calls it made (Python functions and C
    functions called from Python: a measure of work that does not depend on the machine)."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    decoder = Decoder()
    tracemalloc.start()
    sys.setprofile(count)
    try:
        outcome: object = decoder.log_rows(payload)
    except Exception as exc:
        outcome = exc
    finally:
        sys.setprofile(None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return outcome, peak, calls


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_log_payload_is_malformed_at_a_cost_in_proportion_to_its_size(
    name: str,
) -> None:
    payload = HOSTILE[name]
    outcome, peak, calls = _cost(payload)
    assert isinstance(outcome, FrameError) and outcome.reason == "malformed", outcome
    # Python-side allocations (the parser's own arena lives in C, also bounded by the
    # payload it parses: it reads each byte once): a small multiple of the frame.
    assert peak <= 64 * len(payload) + 256 * 1024, (name, len(payload), peak)
    assert calls <= len(payload) + 200, (name, len(payload), calls)


def test_wide_values_decode_in_proportion_to_their_size() -> None:
    # 100,000 empty values in one array: 2 bytes each on the wire, one None each here.
    wide = field_bytes(5, b"".join(field_bytes(1, b"") for _ in range(100_000)))
    payload = _request_with_body(wide)
    outcome, peak, calls = _cost(payload)
    assert isinstance(outcome, list)
    assert outcome[0][8] == (None,) * 100_000
    assert peak <= 64 * len(payload), (len(payload), peak)
    assert calls <= 4 * len(payload), (len(payload), calls)


def test_values_nested_within_the_parsers_limit_decode() -> None:
    (row,) = Decoder().log_rows(_request_with_body(_nested_arrays(40)))
    depth, value = 0, row[8]
    while value:
        depth, value = depth + 1, value[0]
    assert depth == 40


def _frame_errors(telemetry: MemoryTelemetry) -> dict[str, int]:
    return {
        found["otelkit.relay.reason"]: int(point.value)
        for found, point in telemetry.metric_points("otelkit.relay.frame_errors")
    }


def test_hostile_frames_close_their_connection_counted_while_another_child_goes_on(
    relay_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    host = relay_host  # frames up to the default 4 MiB
    good = authed(host)

    def bodies() -> list[object]:
        return [r.log_record.body for r in memory_telemetry.logs()]

    frames = [encode_frame(FRAME_LOGS, payload) for payload in HOSTILE.values()]
    frames.append(struct.pack("!IB", 0xFFFF_FFFF, FRAME_LOGS))  # a 4 GiB frame announced
    for n, frame in enumerate(frames):
        hostile = authed(host)
        hostile.sendall(frame)
        assert closed_by_peer(hostile), n
        hostile.close()
        # the other child's next record still arrives
        good.sendall(encode_frame(FRAME_LOGS, encode_log_request(RESOURCE, [_entry(f"g{n}")])))
        wait_until(lambda n=n: f"g{n}" in bodies(), timeout=10)
    good.close()
    assert bodies() == [f"g{n}" for n in range(len(frames))]  # nothing hostile was emitted
    assert host.stats["frame_errors"] == len(frames)
    assert _frame_errors(memory_telemetry) == {"malformed": len(HOSTILE), "oversized": 1}
