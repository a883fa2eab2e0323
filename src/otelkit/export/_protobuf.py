"""Protocol Buffers wire format for the OTLP messages otelkit writes, and the messages
every signal shares (``AnyValue``, ``KeyValue``, ``Resource``, ``InstrumentationScope``).

Written by hand because building the official message objects and serializing them costs
more than the rest of an export; what it writes is checked field for field against the
official classes (``tests/export``). Fields follow proto3: a scalar equal to its default is
left out, a sub-message the SDK's encoder always sets (a record's body, a span's status,
the resource and the scope) is always written, even empty.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "FIXED32",
    "FIXED64",
    "LEN",
    "VARINT",
    "any_value",
    "attributes",
    "field_bytes",
    "field_fixed64",
    "field_string",
    "field_varint",
    "resource_message",
    "scope_message",
    "tag",
    "varint",
]

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
_logger = logging.getLogger("otelkit")
_double = struct.Struct("<d").pack
_fixed64 = struct.Struct("<Q").pack
_INT64 = 1 << 64


def varint(n: int) -> bytes:
    """``n`` (0 <= n < 2**64) as a base-128 varint."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    """A field's key: its number and wire type."""
    return varint(number << 3 | wire_type)


def field_bytes(number: int, data: bytes) -> bytes:
    """A length-delimited field (bytes, a string's UTF-8 or a sub-message), always written."""
    return tag(number, LEN) + varint(len(data)) + data


def field_string(number: int, text: str | None) -> bytes:
    """A string field, left out when empty or ``None``."""
    return field_bytes(number, text.encode()) if text else b""


def field_varint(number: int, n: int | None) -> bytes:
    """A non-negative integer (``uint32``, an enum), left out when zero or ``None``."""
    return tag(number, VARINT) + varint(n) if n else b""


def field_fixed64(number: int, n: int | None) -> bytes:
    """A ``fixed64`` (a time in nanoseconds), left out when zero or ``None``."""
    return tag(number, FIXED64) + _fixed64(n) if n else b""


_STRING, _BOOL, _INT, _DOUBLE, _ARRAY, _KVLIST, _BYTES = (tag(n, LEN) for n in range(1, 8))
_BOOL, _INT, _DOUBLE = tag(2, VARINT), tag(3, VARINT), tag(4, FIXED64)
_TRUE = _BOOL + b"\x01"


def any_value(value: Any) -> bytes:
    """An ``AnyValue`` message's bytes, by the SDK's rules: ``None`` is an empty value, a
    ``bool`` is checked before an ``int``, a ``str`` and ``bytes`` before a sequence, a
    mapping's keys become strings. Raises ``ValueError`` (or ``TypeError``) for what OTLP
    cannot carry (an int outside int64, a string that is not valid Unicode, another type)."""
    if value is None:
        return b""
    kind = type(value)
    if kind is str:
        data: bytes = value.encode()
        return _STRING + varint(len(data)) + data
    if kind is bool:
        return _TRUE if value else _BOOL + b"\x00"
    if kind is int:
        if not -(1 << 63) <= value < 1 << 63:
            raise ValueError(f"integer out of int64 range: {value}")
        return _INT + varint(value % _INT64)
    if kind is float:
        return _DOUBLE + _double(value)
    return _other_value(value)


def _other_value(value: Any) -> bytes:
    # Subclasses and containers, in the SDK encoder's order of checks.
    if isinstance(value, bool):
        return any_value(bool(value))
    if isinstance(value, str):
        return any_value(str(value))
    if isinstance(value, int):
        return any_value(int(value))
    if isinstance(value, float):
        return any_value(float(value))
    if isinstance(value, bytes):
        return _BYTES + varint(len(value)) + bytes(value)
    if isinstance(value, Sequence):
        body = b"".join(field_bytes(1, any_value(v)) for v in value)
        return _ARRAY + varint(len(body)) + body
    if isinstance(value, Mapping):
        body = b"".join(field_bytes(1, _key_value(str(k), v)) for k, v in value.items())
        return _KVLIST + varint(len(body)) + body
    raise TypeError(f"Invalid type {type(value)} of value {value}")


_KEY = tag(1, LEN)
_VALUE = tag(2, LEN)


def _key_value(key: str, value: Any) -> bytes:
    k = key.encode()
    v = any_value(value)
    if not k:  # proto3 leaves an empty string out
        return _VALUE + varint(len(v)) + v
    return _KEY + varint(len(k)) + k + _VALUE + varint(len(v)) + v


def attributes(number: int, attrs: Mapping[str, Any] | None) -> bytes:
    """Repeated ``KeyValue`` field ``number`` for ``attrs``. A value OTLP cannot carry is
    left out with its key, logged, as the SDK's encoder does."""
    if not attrs:
        return b""
    prefix = tag(number, LEN)
    parts = []
    for key, value in attrs.items():
        try:
            kv = _key_value(key, value)
        except Exception as error:  # noqa: BLE001 - one bad value costs its key only
            _logger.warning("otelkit export: attribute %r left out: %s", key, error)
            continue
        parts.append(prefix + varint(len(kv)) + kv)
    return b"".join(parts)


def resource_message(resource: Any) -> bytes:
    """A ``Resource`` message's bytes (its attributes)."""
    return attributes(1, resource.attributes)


def scope_message(scope: Any) -> bytes:
    """An ``InstrumentationScope`` message's bytes (empty for ``None``)."""
    if scope is None:
        return b""
    return (
        field_string(1, scope.name)
        + field_string(2, scope.version)
        + attributes(3, scope.attributes)
    )
