"""OTLP protobuf encoding of buffered records, written straight to bytes.

The child encodes its batches here instead of building ``opentelemetry.proto`` message
objects per record: a log record becomes protobuf bytes with a handful of ``bytes`` joins,
and spans reuse the SDK's own span encoder. The output is a regular
``ExportLogsServiceRequest`` / ``ExportTraceServiceRequest`` (tests parse it with
``opentelemetry.proto`` and compare it with the SDK's encoders).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from otelkit._sdk import encode as sdk_encode

__all__ = [
    "LogEntry",
    "encode_any",
    "encode_log_request",
    "encode_resource",
    "encode_span_request",
    "entry_from_sdk",
    "warm_up",
]

# A log record in the child's buffer: cheap to build on the hot path, encoded later.
# (time_ns, observed_ns, severity_number, severity_text, body, attributes,
#  trace_id, span_id, trace_flags, scope_name, scope_version, event_name, dropped_attributes)
LogEntry = tuple[
    int,
    int,
    int,
    "str | None",
    Any,
    "Mapping[str, Any] | None",
    int,
    int,
    int,
    str,
    "str | None",
    "str | None",
    int,
]

_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_TRACE_ID = struct.Struct(">QQ").pack
_SPAN_ID = struct.Struct(">Q").pack
_U64 = (1 << 64) - 1
_SMALL = [bytes([n]) for n in range(128)]
_TIME = struct.Struct("<BQ").pack  # a fixed64 field with a one-byte tag
# body field tag, AnyValue length, string_value tag, string length: for up to 125 bytes.
_SHORT_STR_BODY = [bytes([0x2A, n + 2, 0x0A, n]) for n in range(126)]


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    if value < 16384:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 128 else _varint(n)) + payload


def _string(value: str) -> bytes:
    """Length-prefixed UTF-8 (the part after a string field's tag)."""
    data = value.encode("utf-8", "replace")
    n = len(data)
    return (_SMALL[n] if n < 128 else _varint(n)) + data


def encode_any(value: Any) -> bytes:
    """The body of an OTLP ``AnyValue`` for a Python value (``str()`` for unknown types)."""
    kind = type(value)
    if kind is str:
        return b"\x0a" + _string(value)
    if kind is int:
        return b"\x18" + _varint(value & _U64)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is float:
        return b"\x21" + _DOUBLE(value)
    if value is None:
        return b""
    if isinstance(value, str):
        return b"\x0a" + _string(str(value))
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(int(value) & _U64)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _field(b"\x3a", bytes(value))
    if isinstance(value, Mapping):
        return _field(b"\x32", encode_attributes(value, tag=b"\x0a"))
    if isinstance(value, (list, tuple)):
        return _field(b"\x2a", b"".join(_field(b"\x0a", encode_any(v)) for v in value))
    return b"\x0a" + _string(str(value))


# Keys and short string attributes repeat across records: their encoded KeyValue is cached.
_CACHE_MAX = 4096
_KEYS: dict[str, bytes] = {}
_PAIRS: dict[tuple[str, str], bytes] = {}


def _key_value(key: str, value: Any) -> bytes:
    """A ``KeyValue`` message body."""
    if type(value) is int:
        value_part = b"\x18" + _varint(value & _U64)
        return _key(key) + b"\x12" + _SMALL[len(value_part)] + value_part
    if type(value) is str and len(value) <= 64:
        pair = _PAIRS.get((key, value))
        if pair is None:
            pair = _key(key) + _field(b"\x12", b"\x0a" + _string(value))
            if len(_PAIRS) >= _CACHE_MAX:
                _PAIRS.clear()
            _PAIRS[(key, value)] = pair
        return pair
    return _key(key) + _field(b"\x12", encode_any(value))


def _key(key: str) -> bytes:
    found = _KEYS.get(key)
    if found is None:
        found = b"\x0a" + _string(str(key))
        if len(_KEYS) >= _CACHE_MAX:
            _KEYS.clear()
        _KEYS[key] = found
    return found


def encode_attributes(attributes: Mapping[str, Any], *, tag: bytes) -> bytes:
    """Repeated ``KeyValue`` fields with field tag ``tag``."""
    return b"".join([_field(tag, _key_value(k, v)) for k, v in attributes.items()])


_SEVERITY_FIELDS: dict[tuple[int, str | None], bytes] = {}
# Complete ``attributes`` fields (tag, length, KeyValue) of a key with a short string value,
# and the start of such a field for an int value, per key and varint length of the value.
_STR_ATTRIBUTES: dict[tuple[str, str], bytes] = {}
_INT_ATTRIBUTES: dict[tuple[str, int], bytes] = {}


def _str_attribute(key: str, value: str) -> bytes:
    field = _field(b"\x32", _key_value(key, value))
    if len(_STR_ATTRIBUTES) >= _CACHE_MAX:
        _STR_ATTRIBUTES.clear()
    _STR_ATTRIBUTES[(key, value)] = field
    return field


def _int_attribute_start(key: str, size: int) -> bytes:
    """Tag, length, the key and the value's tags of an int attribute whose varint has
    ``size`` bytes; the varint completes the field."""
    key_part = _key(key)
    kv_len = len(key_part) + 3 + size  # value tag, value length, AnyValue tag, varint
    start = b"\x32" + _varint(kv_len) + key_part + b"\x12" + _SMALL[size + 1] + b"\x18"
    if len(_INT_ATTRIBUTES) >= _CACHE_MAX:
        _INT_ATTRIBUTES.clear()
    _INT_ATTRIBUTES[(key, size)] = start
    return start


def _severity_fields(number: int, text: str | None) -> bytes:
    """``severity_number`` and ``severity_text`` fields, cached per pair."""
    out = b"\x10" + _varint(number) if number else b""
    if text:
        out += b"\x1a" + _string(text)
    if len(_SEVERITY_FIELDS) < _CACHE_MAX:
        _SEVERITY_FIELDS[(number, text)] = out
    return out


def _encode_log(entry: LogEntry) -> bytes:
    """One ``log_records`` field of a ``ScopeLogs`` (tag, length, ``LogRecord``)."""
    (ts, observed, sev, sev_text, body, attrs, trace_id, span_id, flags, _, _, event, dropped) = (
        entry
    )
    parts = [_TIME(0x09, ts)] if ts else []
    severity = _SEVERITY_FIELDS.get((sev, sev_text))
    if severity is None:
        severity = _severity_fields(sev, sev_text)
    parts.append(severity)
    # The body is present even when empty, as the SDK encoder does.
    if type(body) is str and len(body) < 126:
        data = body.encode("utf-8", "replace")
        n = len(data)
        if n < 126:  # the field's head is cached (lengths fit one byte)
            parts.append(_SHORT_STR_BODY[n])
        else:
            parts.append(b"\x2a" + _varint(n + 1 + len(_varint(n))) + b"\x0a" + _varint(n))
        parts.append(data)
    else:
        value = encode_any(body)
        n = len(value)
        parts.append(b"\x2a" + (_SMALL[n] if n < 128 else _varint(n)) + value)
    if attrs:
        for key, item in attrs.items():
            kind = type(item)
            if kind is int:
                data = _varint(item & _U64)
                start = _INT_ATTRIBUTES.get((key, len(data)))
                if start is None:
                    start = _int_attribute_start(key, len(data))
                parts.append(start + data)
            elif kind is str and len(item) <= 64:
                field = _STR_ATTRIBUTES.get((key, item))
                parts.append(field if field is not None else _str_attribute(key, item))
            else:
                kv = _key_value(key, item)
                n = len(kv)
                parts.append(b"\x32" + (_SMALL[n] if n < 128 else _varint(n)) + kv)
    if dropped:
        parts.append(b"\x38" + _varint(dropped))
    if flags:
        parts.append(b"\x45" + _FIXED32(flags))
    if trace_id:
        parts.append(b"\x4a\x10" + _TRACE_ID(trace_id >> 64, trace_id & _U64))
    if span_id:
        parts.append(b"\x52\x08" + _SPAN_ID(span_id))
    if observed:
        parts.append(_TIME(0x59, observed))
    if event:
        parts.append(b"\x62" + _string(event))
    record = b"".join(parts)
    n = len(record)
    return b"\x12" + (_SMALL[n] if n < 128 else _varint(n)) + record


def encode_resource(resource: Resource) -> bytes:
    """An OTLP ``Resource`` message (attributes only)."""
    return encode_attributes(resource.attributes, tag=b"\x0a")


def _encode_scope(name: str, version: str | None) -> bytes:
    out = _field(b"\x0a", name.encode()) if name else b""
    if version:
        out += _field(b"\x12", version.encode())
    return out


def _grouped_request(resource: bytes, scopes: Iterable[tuple[bytes, list[bytes]]]) -> bytes:
    """``records`` are complete fields of tag 2 (``log_records`` / ``spans``)."""
    scope_parts = [
        _field(b"\x12", _field(b"\x0a", scope) + b"".join(records)) for scope, records in scopes
    ]
    return _field(b"\x0a", _field(b"\x0a", resource) + b"".join(scope_parts))


def encode_log_request(resource: bytes, entries: Sequence[LogEntry]) -> bytes:
    """An ``ExportLogsServiceRequest`` with every entry under one resource, grouped by scope."""
    scopes: dict[tuple[str, str | None], list[bytes]] = {}
    name: object = None
    version: object = None
    group: list[bytes] = []
    for entry in entries:
        if entry[9] != name or entry[10] != version:  # records of one logger come in runs
            name, version = entry[9], entry[10]
            group = scopes.setdefault((entry[9], entry[10]), [])
        group.append(_encode_log(entry))
    return _grouped_request(resource, ((_encode_scope(*k), v) for k, v in scopes.items()))


def warm_up() -> None:
    """Import what encoding spans needs (protobuf message classes, ~25 ms): the sender
    thread calls it when it starts, so no flushing thread ever imports (an import under a
    signal handler can deadlock on the import lock) and start-up does not pay for it."""
    sdk_encode.warm_up()


def encode_span_request(resource: bytes, spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` with every span under one resource, grouped by scope."""
    scopes = sdk_encode.span_messages(spans)
    return _grouped_request(
        resource,
        ((_encode_scope(*k), [_field(b"\x12", m) for m in v]) for k, v in scopes.items()),
    )


def entry_from_sdk(record: ReadWriteLogRecord) -> LogEntry:
    """The buffered form of a record that came through the SDK ``Logger``."""
    lr = record.log_record
    scope = record.instrumentation_scope
    severity = lr.severity_number
    return (
        lr.timestamp or 0,
        lr.observed_timestamp or 0,
        severity.value if severity is not None else 0,
        lr.severity_text,
        lr.body,
        lr.attributes,
        lr.trace_id or 0,
        lr.span_id or 0,
        int(lr.trace_flags or 0),
        scope.name if scope is not None else "",
        scope.version if scope is not None else None,
        lr.event_name,
        record.dropped_attributes,
    )
