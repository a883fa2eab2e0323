"""OTLP protobuf written straight to bytes: the child's resource, its spans and metrics.

The child encodes here without building ``opentelemetry.proto`` message objects: its
resource and metric batches with a handful of ``bytes`` joins, spans with the encoder of
``otelkit.export`` (the one every OTLP/HTTP export of otelkit uses). The output is a regular ``ExportTraceServiceRequest`` (tests parse it with
``opentelemetry.proto`` and compare it with the SDK's encoders). Log records travel in
the relay's own log frames (``otelkit.relay._log_frames``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from otelkit.export import span_message

__all__ = [
    "encode_any",
    "encode_attributes",
    "encode_resource",
    "encode_span_request",
    "warm_up",
]

_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_TRACE_ID = struct.Struct(">QQ").pack
_SPAN_ID = struct.Struct(">Q").pack
_U64 = (1 << 64) - 1
_SMALL = [bytes([n]) for n in range(128)]


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


def warm_up() -> None:
    """Nothing left to import: the span encoder is otelkit's own (kept for the sender
    thread, which calls it when it starts)."""


def encode_span_request(resource: bytes, spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` with every span under one resource, grouped by
    scope ``(name, version)`` in order of first appearance."""
    scopes: dict[tuple[str, str | None], list[bytes]] = {}
    for span in spans:
        scope = span.instrumentation_scope
        key = (scope.name, scope.version or None) if scope is not None else ("", None)
        scopes.setdefault(key, []).append(span_message(span))
    return _grouped_request(resource, ((_encode_scope(*k), v) for k, v in scopes.items()))
