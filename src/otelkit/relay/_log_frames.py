"""Log frames: a child's buffered log records, pickled, and the host's checks on them.

Log records are what a relay carries most of. Up to wire version 2 they travelled as OTLP
protobuf; reading that back field by field cost the host's one serving thread about 3 µs a
record (a third of all it did per record) and writing it cost the child 1.1 µs. A log frame
now carries the child's buffered entries (:data:`LogEntry`) as they are, pickled with
protocol 5 (C speed on both sides: about 0.3 µs a record each way), behind the child's
resource as an OTLP ``Resource`` message, which the host decodes once per child::

    4 bytes   length r of the resource, unsigned big-endian
    r bytes   the child's OTLP Resource message
    the rest  pickle (protocol 5) of a list of LogEntry tuples

Unpickling is safe here because no class is ever looked up: the host's unpickler refuses
every global, so a frame can only hold builtin scalars and containers (``None``, ``bool``,
``int``, ``float``, ``str``, ``bytes``, ``bytearray``, ``tuple``, ``list``, ``dict``,
``set``, ``frozenset``), and a frame that asks for anything else is malformed. The host
then checks every entry's shape, types and ranges before it builds any record, and turns
values into what the OTLP encoding would have carried for them (:func:`otlp_value`), so a
relayed record is the one the protobuf path gave. The child never needs a global either: a
value that is not a builtin (an enum member, a ``str`` subclass, any other object) is
turned into its OTLP form before pickling (only in a batch that has one).
"""

from __future__ import annotations

import io
import pickle
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord

from otelkit.relay._wire import FrameError

__all__ = [
    "LogEntry",
    "decode_log_payload",
    "encode_log_payload",
    "entry_from_sdk",
    "otlp_value",
]

LogEntry = tuple[Any, ...]
"""A log record in a child's buffer, and on the wire: ``(time_ns, observed_ns,
severity_number, severity_text, body, attributes, trace_id, span_id, trace_flags,
scope_name, scope_version, event_name, dropped_attributes)``. Times and ids are ints
(0: none), ``severity_number`` 0-24 (0: unspecified), ``attributes`` a dict or ``None``."""

ENTRY_SIZE = 13
_PROTOCOL = 5
_LENGTH = struct.Struct("!I")
_U64 = (1 << 64) - 1
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_UNDER_2_64 = 1 << 64
# Attribute values that OTLP carries as they are and the SDK keeps unchanged (an int too,
# within int64).
_PLAIN_TYPES = frozenset({str, bool, float, bytes})


# ---- the child's side -------------------------------------------------------------------
class _NeedsGlobal(Exception):
    """A value that pickle could only write by naming its class."""


class _BuiltinsOnly(pickle.Pickler):
    # reducer_override is not called for exact builtin scalars and containers, only for
    # what pickle would write with a global: those are converted first (see below).
    def reducer_override(self, obj: Any) -> Any:
        raise _NeedsGlobal


def _pickled(value: Any) -> bytes:
    out = io.BytesIO()
    _BuiltinsOnly(out, _PROTOCOL).dump(value)
    return out.getvalue()


def encode_log_payload(resource: bytes, entries: Sequence[LogEntry]) -> bytes:
    """A ``FRAME_LOGS`` payload: ``resource`` (an encoded OTLP ``Resource``) and ``entries``.

    Raises if an entry cannot be encoded (a value whose ``str()`` raises, a structure that
    contains itself): the caller then encodes item by item and counts what fails."""
    try:
        data = _pickled(entries if type(entries) is list else list(entries))
    except _NeedsGlobal:
        data = _pickled([_with_otlp_values(entry) for entry in entries])
    return _LENGTH.pack(len(resource)) + resource + data


def _with_otlp_values(entry: LogEntry) -> LogEntry:
    # Every field as the host expects it (an int subclass as an int, ...), and the values
    # as OTLP would carry them.
    (ts, observed, number, text, body, attributes, trace_id, span_id, flags, scope, version,
     event, dropped) = entry  # fmt: skip
    if attributes:
        attributes = {str(key): otlp_value(value) for key, value in attributes.items()}
    return (
        *(int(ts), int(observed), int(number), _text(text), otlp_value(body)),
        *(attributes or None, int(trace_id), int(span_id), int(flags), str(scope)),
        *(_text(version), _text(event), int(dropped)),
    )


def otlp_value(value: Any, budget: list[int] | None = None) -> Any:
    """``value`` as the OTLP round trip carries it: ``str``, ``bool``, ``float`` and
    ``bytes`` as they are, an ``int`` wrapped to int64, ``None``, a sequence as a tuple, a
    mapping as a dict with ``str`` keys, anything else as its ``str()``.

    ``budget`` (the host's: a one-item list) is spent one per value inside a container;
    a ``ValueError`` once it runs out. A pickled frame can refer to one container many
    times, so a short frame could otherwise stand for an enormous structure."""
    kind = type(value)
    if kind is str or kind is bool or kind is float or kind is bytes or value is None:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        wrapped = int(value) & _U64  # as an OTLP int64 carries it
        return wrapped - _UNDER_2_64 if wrapped > _I64_MAX else wrapped
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if budget is not None and isinstance(value, (Mapping, list, tuple)):
        _spend(budget, len(value))
    if isinstance(value, Mapping):
        return {str(key): otlp_value(item, budget) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(otlp_value(item, budget) for item in value)
    return str(value)


def entry_from_sdk(record: ReadableLogRecord | ReadWriteLogRecord) -> LogEntry:
    """The buffered form of a record that came through the SDK (``Logger.emit``, or an
    exporter's batch)."""
    lr = record.log_record
    scope = record.instrumentation_scope
    severity = lr.severity_number
    attributes = lr.attributes
    return (
        lr.timestamp or 0,
        lr.observed_timestamp or 0,
        severity.value if severity is not None else 0,
        _text(lr.severity_text),
        lr.body,
        dict(attributes) if attributes else None,
        lr.trace_id or 0,
        lr.span_id or 0,
        int(lr.trace_flags or 0),
        str(scope.name) if scope is not None else "",
        _text(scope.version) if scope is not None else None,
        _text(lr.event_name),
        record.dropped_attributes,
    )


def _spend(budget: list[int], n: int) -> None:
    budget[0] -= n
    if budget[0] < 0:
        raise ValueError("a log frame's values add up to more than the frame")


# ---- the host's side --------------------------------------------------------------------
class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a log frame names {module}.{name}")


def decode_log_payload(payload: bytes) -> tuple[bytes, list[LogEntry], list[bool]]:
    """``(resource message, entries, plain)`` of a ``FRAME_LOGS`` payload, every entry
    checked; ``plain[i]`` says entry *i*'s attributes are ``None`` or plain scalars under
    ``str`` keys (what the SDK would keep as they are). An entry that needed converting is
    replaced by its converted copy. Raises :class:`FrameError` (``malformed``)."""
    if len(payload) < _LENGTH.size:
        raise FrameError("malformed", "log frame shorter than its header")
    (size,) = _LENGTH.unpack_from(payload)
    start = _LENGTH.size + size
    if start > len(payload):
        raise FrameError("malformed", "log frame resource runs past the frame")
    try:
        stream = io.BytesIO(memoryview(payload)[start:])
        entries = _NoGlobals(stream).load()
        if stream.read(1):
            raise ValueError("bytes after the pickled entries")
        if type(entries) is not list:
            raise ValueError("the entries are not a list")
        budget = [len(payload)]  # no container may hold more values than the frame has bytes
        plain = [_check(entries, index, budget) for index in range(len(entries))]
    except FrameError:
        raise
    except Exception as exc:
        raise FrameError("malformed", f"undecodable log frame: {exc!r}") from exc
    return bytes(payload[_LENGTH.size : start]), entries, plain


def _check(entries: list[Any], index: int, budget: list[int]) -> bool:
    """Check ``entries[index]``; convert it in place if it needs it; whether it is plain."""
    entry = entries[index]
    if type(entry) is not tuple or len(entry) != ENTRY_SIZE:
        raise FrameError("malformed", "a log entry is not a tuple of 13 fields")
    (ts, observed, number, text, body, attributes, trace_id, span_id, flags, scope, version,
     event, dropped) = entry  # fmt: skip
    # ``|`` and ``>>`` take ints only (a float, a str or None raises TypeError), and a
    # non-negative int is below 2**k exactly when it shifted right by k is 0 (a negative one
    # stays negative): times and span ids are 64-bit, trace ids 128-bit, flags 8-bit, the
    # dropped count 32-bit and the severity number 0-24.
    try:
        in_range = not (
            (ts | observed | span_id) >> 64
            or trace_id >> 128
            or flags >> 8
            or dropped >> 32
            or number >> 5
        )
    except TypeError:
        in_range = False
    if not in_range or number > 24:
        raise FrameError("malformed", "a log entry's times, severity or ids are not in range")
    if attributes is None:
        plain = True
    elif type(attributes) is dict:
        plain = _plain(attributes)
    else:
        raise FrameError("malformed", "a log entry's attributes are not a dict")
    if (
        plain
        and type(body) is str
        and type(scope) is str
        and (text is None or type(text) is str)
        and (version is None or type(version) is str)
        and (event is None or type(event) is str)
    ):
        return True
    # Rare: what the OTLP encoding would have made of odd values.
    if attributes is not None and not plain:
        _spend(budget, len(attributes))
        attributes = {str(key): otlp_value(value, budget) for key, value in attributes.items()}
    entries[index] = (
        *(ts, observed, number, _text(text), otlp_value(body, budget), attributes or None),
        *(trace_id, span_id, flags, str(scope), _text(version), _text(event), dropped),
    )
    return plain


def _plain(attributes: dict[Any, Any]) -> bool:
    for key, value in attributes.items():
        kind = type(value)
        if type(key) is not str:
            return False
        if kind is int:
            if not _I64_MIN <= value <= _I64_MAX:
                return False
        elif kind not in _PLAIN_TYPES:
            return False
    return True


def _text(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)
