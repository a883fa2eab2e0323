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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "FIXED32",
    "FIXED64",
    "LEN",
    "VARINT",
    "Encoded",
    "any_value",
    "attributes",
    "export_request",
    "field_bytes",
    "field_fixed64",
    "field_string",
    "field_varint",
    "tag",
    "varint",
]

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
_logger = logging.getLogger("otelkit")
_double = struct.Struct("<d").pack
_fixed64 = struct.Struct("<Q").pack
_INT64 = 1 << 64


_SMALL = [bytes((n,)) for n in range(0x80)]


def varint(n: int) -> bytes:
    """``n`` (0 <= n < 2**64) as a base-128 varint."""
    if n < 0x80:
        return _SMALL[n]
    if n < 0x4000:  # two bytes: most lengths and many counts
        return bytes((n & 0x7F | 0x80, n >> 7))
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
_keys: dict[str, bytes] = {}  # a key's field, encoded once (bounded: cleared when full)
_MAX_KEYS = 4096


def _key(key: str) -> bytes:
    encoded = _keys.get(key)
    if encoded is None:
        k = key.encode()
        encoded = _KEY + varint(len(k)) + k if k else b""  # proto3 leaves "" out
        if len(_keys) >= _MAX_KEYS:
            _keys.clear()
        _keys[key] = encoded
    return encoded


def _key_value(key: str, value: Any) -> bytes:
    if type(value) is str:  # most attributes: the value's bytes framed without any_value()
        data = value.encode()
        inner = _STRING + varint(len(data)) + data
    else:
        inner = any_value(value)
    return _key(key) + _VALUE + varint(len(inner)) + inner


def _field_of(prefix: bytes, key: str, value: Any) -> bytes:
    try:
        kv = _key_value(key, value)
    except Exception as error:  # noqa: BLE001 - one bad value costs its key only
        _logger.warning("otelkit export: attribute %r left out: %s", key, error)
        return b""
    return prefix + varint(len(kv)) + kv


# String values repeat from record to record (a logging call's code.* attributes, a span's
# route): a pair with a short string value is encoded once, as its whole field. Numbers are
# encoded each time: ids and counts seldom repeat, and a cache they keep filling costs more
# than it saves.
_pairs: dict[tuple[int, str, str], bytes] = {}
_SHORT = 256


def attributes(number: int, attrs: Mapping[str, Any] | None) -> bytes:
    """Repeated ``KeyValue`` field ``number`` for ``attrs``. A value OTLP cannot carry is
    left out with its key, logged, as the SDK's encoder does."""
    if not attrs:
        return b""
    prefix = tag(number, LEN)
    parts = []
    pairs = _pairs
    for key in attrs:  # by key: cheaper than items() on the SDK's attribute mappings
        value = attrs[key]
        if type(value) is str and len(value) <= _SHORT:
            cache_key = (number, key, value)
            part = pairs.get(cache_key)
            if part is None:
                part = _field_of(prefix, key, value)
                if len(pairs) >= _MAX_KEYS:
                    pairs.clear()
                if part:  # a value that cannot be encoded is logged each time
                    pairs[cache_key] = part
        else:
            part = _field_of(prefix, key, value)
        parts.append(part)
    return b"".join(parts)


def _resource_message(resource: Any) -> bytes:
    return attributes(1, resource.attributes)


def _scope_message(scope: Any) -> bytes:
    if scope is None:
        return b""
    return (
        field_string(1, scope.name)
        + field_string(2, scope.version)
        + attributes(3, scope.attributes)
    )


class Encoded(NamedTuple):
    """A log record or a span written as its message (framed as field 2 of its scope
    message) when it was made, with the resource and scope that group it in a request.
    A batch queue that holds these instead of the SDK's objects keeps one object and a few
    bytes an item alive instead of a dozen objects: the garbage collector has fewer to go
    through and the memory of finished items is reused."""

    resource: Any
    instrumentation_scope: Any
    message: bytes


def export_request(items: Iterable[Any], encode: Callable[[Any], bytes]) -> bytes:
    """An ``Export{Logs,Trace}ServiceRequest``: each item (a log record or a span, both
    with ``resource`` and ``instrumentation_scope``) as ``encode(item)`` gives it (its
    repeated field 2 of the scope message, framed), or an :class:`Encoded` item's message,
    grouped by resource, then by scope, in
    order of first appearance, as the SDK's encoders group them. The two requests have the
    same layout: ``Resource{Logs,Spans}`` = resource 1, scope groups 2, schema URL 3;
    ``Scope{Logs,Spans}`` = scope 1, items 2, schema URL 3."""
    # Equal resources (and scopes) group together, as in the SDK's dict; each distinct
    # object is hashed once (a Resource hashes through JSON), then found by its id (the
    # batch keeps every object alive, so ids are not reused within it).
    canonical: dict[Any, Any] = {}
    by_id: dict[int, Any] = {}
    groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}

    def group_of(resource: Any, scope: Any) -> list[bytes]:
        rkey = by_id.get(id(resource))
        if rkey is None:
            rkey = by_id[id(resource)] = id(canonical.setdefault(resource, resource))
        skey = by_id.get(id(scope))
        if skey is None:
            skey = by_id[id(scope)] = id(canonical.setdefault(scope, scope))
        group = groups.get(rkey)
        if group is None:
            group = groups[rkey] = (resource, {})
        scopes = group[1]
        encoded = scopes.get(skey)
        if encoded is None:
            encoded = scopes[skey] = (scope, [])
        return encoded[1]

    # Items of one resource and scope come in runs (nearly always one run): an item from
    # the same objects as the one before it goes to the same list without the lookups.
    last_resource = last_scope = encoded = None
    for item in items:
        resource, scope = item.resource, item.instrumentation_scope or None
        if encoded is None or resource is not last_resource or scope is not last_scope:
            last_resource, last_scope = resource, scope
            encoded = group_of(resource, scope)
        encoded.append(item.message if type(item) is Encoded else encode(item))
    out = []
    for resource, scopes in groups.values():
        scope_groups = b"".join(
            field_bytes(
                2,
                field_bytes(1, _scope_message(scope))
                + b"".join(encoded)
                + field_string(3, scope.schema_url if scope is not None else None),
            )
            for scope, encoded in scopes.values()
        )
        body = (
            field_bytes(1, _resource_message(resource))
            + scope_groups
            + field_string(3, resource.schema_url)
        )
        out.append(field_bytes(1, body))
    return b"".join(out)
