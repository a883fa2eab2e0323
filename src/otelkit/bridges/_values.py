"""Attribute values for OpenTelemetry: what a structured logging event carries, made valid.

OTel attribute values are ``str``, ``bool``, ``int`` (64-bit), ``float`` or a homogeneous
sequence of one of them. Anything else is JSON-encoded (mappings, mixed or nested sequences,
``None``); a value JSON cannot take (an arbitrary object, a cycle, a non-string key) becomes
its ``repr`` and is counted. Nothing here raises.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import pathlib
import uuid
from collections.abc import Mapping
from typing import Any

from opentelemetry.util.types import AnyValue

__all__ = ["Encoder", "safe_repr", "safe_str"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ARRAY_TYPES = (str, bool, int, float)
_STRINGIFIED = (datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, uuid.UUID)


def safe_repr(value: object) -> str:
    """``repr(value)``, or a placeholder when its ``__repr__`` raises."""
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not reach the caller
        return f"<unrepresentable {type(value).__name__}>"


def safe_str(value: object) -> str:
    """``str(value)``, else its :func:`safe_repr`."""
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not reach the caller
        return safe_repr(value)


def _stringified(value: object) -> str | None:
    """The text of a value that has one obvious text (dates, UUIDs, paths, ...), else None."""
    if isinstance(value, _STRINGIFIED):
        return (
            value.isoformat() if isinstance(value, (datetime.date, datetime.time)) else str(value)
        )
    if isinstance(value, pathlib.PurePath):
        return str(value)
    return None


class Encoder:
    """Turns event values into attribute values; counts the ones given as their ``repr``.

    ``fallbacks`` is read by the bridges' ``unencodable`` property. The counter is a plain
    int incremented on the rare fallback path only (an occasional lost increment under a
    race is acceptable for a diagnostic figure; the hot path stays lock-free).
    """

    __slots__ = ("fallbacks",)

    def __init__(self) -> None:
        self.fallbacks = 0

    def value(self, value: Any) -> AnyValue:
        """The attribute value for ``value`` (see the module docstring)."""
        kind = type(value)
        if kind is str or kind is bool or kind is float:
            return value  # type: ignore[no-any-return]
        if kind is int:
            return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
        if isinstance(value, (list, tuple)):
            return self._sequence(value)
        if isinstance(value, (Mapping, set, frozenset)) or value is None:
            return self._json(value)
        if isinstance(value, str):  # subclasses: str enums, markup strings, ...
            return str.__str__(value)
        if isinstance(value, int):  # IntEnum, IntFlag, numpy-free int subclasses
            return self.value(int(value))
        if isinstance(value, float):
            return float(value)
        if isinstance(value, enum.Enum):
            return self.value(value.value)
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        text = _stringified(value)
        if text is not None:
            return text
        return self._fallback(value)

    def _sequence(self, items: list[Any] | tuple[Any, ...]) -> AnyValue:
        if not items:
            return ()
        first = type(items[0])
        if (
            first in _ARRAY_TYPES
            and all(type(item) is first for item in items)
            and (first is not int or all(_INT64_MIN <= i <= _INT64_MAX for i in items))
        ):
            return tuple(items)
        return self._json(items)

    def _json(self, value: Any) -> str:
        try:
            return json.dumps(value, default=self._json_default, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):  # a cycle, a non-string key, ...
            return self._fallback(value)

    def _json_default(self, value: Any) -> Any:
        if isinstance(value, (set, frozenset, tuple)):
            return list(value)
        text = _stringified(value)
        if text is not None:
            return text
        if isinstance(value, (bytes, bytearray)):
            return safe_repr(bytes(value))
        return self._fallback(value)

    def _fallback(self, value: object) -> str:
        self.fallbacks += 1
        return safe_repr(value)
