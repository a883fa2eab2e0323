"""Log frames: a child's buffered log records, column by column, and the host's checks.

Log records are what a relay carries most of. Up to wire version 2 they travelled as OTLP
protobuf; reading that back field by field cost the host's one serving thread about 3 µs a
record. Since version 3 a log frame carries the child's buffered entries (:data:`LogEntry`)
pickled with protocol 5 (C speed on both sides); since version 4 it carries them column by
column: the int fields as packed machine words (both ends run on one machine: native byte
order), which the host reads in one C call a column and needs no type check for, and the
other fields as one tuple a field, which the host checks a whole column at a time. So a
frame of n records holds a dozen objects instead of n tuples (the host's garbage collector
counts every tuple), and checking costs the host a third of what checking entry by entry
did::

    4 bytes   length r of the resource, unsigned big-endian
    r bytes   the child's OTLP Resource message
    the rest  pickle (protocol 5) of a 14-tuple:
              n                          the number of records
              times, observed, span ids, dropped counts
                                         8n bytes each: unsigned 64-bit, native order
              trace ids                  16n bytes (big-endian 128-bit), or b"": all zero
              severity numbers, flags    n bytes each
              severity texts, bodies, attributes, scope names, scope versions,
              event names                a tuple of n values each

Unpickling is safe here because no class is ever looked up: the host's unpickler refuses
every global, so a frame can only hold builtin scalars and containers (``None``, ``bool``,
``int``, ``float``, ``str``, ``bytes``, ``bytearray``, ``tuple``, ``list``, ``dict``,
``set``, ``frozenset``), and a frame that asks for anything else is malformed. The host
then checks every column's shape, types and ranges before it builds any record, and turns
values into what the OTLP encoding would have carried for them (:func:`otlp_value`), so a
relayed record is the one the protobuf path gave. The child never needs a global either: a
value that is not a builtin (an enum member, a ``str`` subclass, any other object) is
turned into its OTLP form before pickling (only in a batch that has one).
"""

from __future__ import annotations

import io
import pickle
import struct
from array import array
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord

from otelkit.relay._wire import FrameError

__all__ = [
    "LogColumns",
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

_COLUMNS = 14  # the number of records and the 13 fields
_WORD = "Q"  # unsigned 64-bit
_WORD_SIZE = array(_WORD).itemsize
_FIELDS = [itemgetter(i) for i in range(13)]
_PROTOCOL = 5
_LENGTH = struct.Struct("!I")
_U64 = (1 << 64) - 1
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_UNDER_2_64 = 1 << 64
# Attribute values that OTLP carries as they are and the SDK keeps unchanged (an int too,
# within int64).
_PLAIN_TYPES = frozenset({str, bool, float, bytes})
_PLAIN_OR_INT = _PLAIN_TYPES | {int}
_STR = frozenset({str})
_STR_OR_NONE = frozenset({str, type(None)})
_DICT_OR_NONE = frozenset({dict, type(None)})


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
    contains itself, an int field out of its range): the caller then encodes item by item
    and counts what fails."""
    try:
        data = _pickled(_columns(entries))
    except _NeedsGlobal:
        data = _pickled(_columns([_with_otlp_values(entry) for entry in entries]))
    return _LENGTH.pack(len(resource)) + resource + data


def _columns(entries: Sequence[LogEntry]) -> tuple[Any, ...]:
    n = len(entries)
    if not n:
        return (0, b"", b"", b"", b"", b"", b"", b"", (), (), (), (), (), ())
    # A field at a time: zip(*entries) would make an iterator per entry, which the garbage
    # collector counts (a collection every few hundred records, in the application).
    (ts, observed, number, text, body, attributes, trace_id, span_id, flags, scope, version,
     event, dropped) = [tuple(map(field, entries)) for field in _FIELDS]  # fmt: skip
    trace_ids = b"".join([t.to_bytes(16, "big") for t in trace_id]) if any(trace_id) else b""
    return (
        *(n, _words(ts), _words(observed), _words(span_id), _words(dropped), trace_ids),
        *(bytes(number), bytes(flags), text, body, attributes, scope, version, event),
    )


def _words(values: Sequence[int]) -> bytes:
    return array(_WORD, values).tobytes()


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


class LogColumns:
    """A decoded log frame's records, field by field (checked, converted where needed)."""

    __slots__ = ("_fields", "count")

    def __init__(self, count: int, fields: list[Sequence[Any]]) -> None:
        self.count = count
        self._fields = fields  # in LogEntry order

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[LogEntry]:
        return self.rows()

    def rows(self, start: int = 0, end: int | None = None) -> Iterator[LogEntry]:
        """The records ``start`` to ``end`` as :data:`LogEntry` tuples, made one at a time."""
        return zip(*(field[start:end] for field in self._fields), strict=True)


def decode_log_payload(payload: bytes) -> tuple[bytes, LogColumns, list[bool]]:
    """``(resource message, records, plain)`` of a ``FRAME_LOGS`` payload, every field
    checked; ``plain[i]`` says record *i*'s attributes are ``None`` or plain scalars under
    ``str`` keys (what the SDK would keep as they are). A record with values that needed
    converting holds their converted copies. Raises :class:`FrameError` (``malformed``)."""
    if len(payload) < _LENGTH.size:
        raise FrameError("malformed", "log frame shorter than its header")
    (size,) = _LENGTH.unpack_from(payload)
    start = _LENGTH.size + size
    if start > len(payload):
        raise FrameError("malformed", "log frame resource runs past the frame")
    try:
        stream = io.BytesIO(memoryview(payload)[start:])
        value = _NoGlobals(stream).load()
        if stream.read(1):
            raise ValueError("bytes after the pickled records")
        columns, plain = _checked(value, budget=[len(payload)])
    except FrameError:
        raise
    except Exception as exc:
        raise FrameError("malformed", f"undecodable log frame: {exc!r}") from exc
    return bytes(payload[_LENGTH.size : start]), columns, plain


def _checked(value: Any, budget: list[int]) -> tuple[LogColumns, list[bool]]:
    # ``budget``: no container may hold more values than the frame has bytes.
    if type(value) is not tuple or len(value) != _COLUMNS or type(value[0]) is not int:
        raise ValueError("the records are not a 14-tuple that starts with their number")
    n = value[0]
    if n < 0:
        raise ValueError("a negative number of records")
    times, observed, span_ids, dropped = (_unpacked(value[i], n) for i in range(1, 5))
    trace_ids = _trace_ids(value[5], n)
    numbers, flags = (_bytes_column(value[i], n) for i in (6, 7))
    texts, bodies, attributes, scopes, versions, events = value[8:]
    for column in (texts, bodies, attributes, scopes, versions, events):
        if type(column) is not tuple or len(column) != n:
            raise ValueError("a field does not hold one value per record")
    if n and (max(numbers) > 24 or max(dropped) >> 32):
        raise FrameError("malformed", "a log record's severity or dropped count is not in range")
    fields: list[Sequence[Any]] = [
        *(times, observed, numbers, texts, bodies, attributes, trace_ids, span_ids, flags),
        *(scopes, versions, events, dropped),
    ]
    if _all_plain(texts, bodies, attributes, scopes, versions, events):
        return LogColumns(n, fields), [True] * n
    return LogColumns(n, fields), _converted(fields, n, budget)


def _unpacked(raw: Any, n: int) -> array[int]:
    if type(raw) is not bytes or len(raw) != n * _WORD_SIZE:
        raise ValueError("an int field is not n machine words")
    words = array(_WORD)
    words.frombytes(raw)
    return words


def _trace_ids(raw: Any, n: int) -> Sequence[int]:
    if type(raw) is not bytes or len(raw) not in (0, 16 * n):
        raise ValueError("the trace ids are not n 16-byte ids (or none)")
    if not raw:
        return [0] * n
    return [int.from_bytes(raw[i : i + 16], "big") for i in range(0, len(raw), 16)]


def _bytes_column(raw: Any, n: int) -> bytes:
    if type(raw) is not bytes or len(raw) != n:
        raise ValueError("a one-byte field is not n bytes")
    return raw


def _all_plain(
    texts: tuple[Any, ...],
    bodies: tuple[Any, ...],
    attributes: tuple[Any, ...],
    scopes: tuple[Any, ...],
    versions: tuple[Any, ...],
    events: tuple[Any, ...],
) -> bool:
    """Whether every record is what a child's buffer holds nearly always: text fields of
    their exact types and plain attributes (checked a field at a time, in C loops)."""
    if not (set(map(type, bodies)) <= _STR and set(map(type, scopes)) <= _STR):
        return False
    if not all(set(map(type, column)) <= _STR_OR_NONE for column in (texts, versions, events)):
        return False
    if not set(map(type, attributes)) <= _DICT_OR_NONE:
        return False
    dicts = list(filter(None, attributes))
    if not dicts:
        return True
    if not set(map(type, chain.from_iterable(dicts))) <= _STR:  # the keys
        return False
    values = list(chain.from_iterable(map(dict.values, dicts)))
    kinds = set(map(type, values))
    if not kinds <= _PLAIN_OR_INT:
        return False
    if int not in kinds:
        return True
    ints = [value for value in values if type(value) is int]
    return min(ints) >= _I64_MIN and max(ints) <= _I64_MAX


def _converted(fields: list[Sequence[Any]], n: int, budget: list[int]) -> list[bool]:
    """Rare: a frame with odd values. Each record's values as the OTLP encoding would have
    carried them (converted in place, record by record); whether each one is plain."""
    texts, bodies, attributes, scopes, versions, events = (
        list(fields[i]) for i in (3, 4, 5, 9, 10, 11)
    )
    plain = []
    for i in range(n):
        found = attributes[i]
        if found is None:
            is_plain = True
        elif type(found) is dict:
            is_plain = _plain(found)
            if not is_plain:
                _spend(budget, len(found))
                attributes[i] = {str(key): otlp_value(v, budget) for key, v in found.items()}
        else:
            raise FrameError("malformed", "a log record's attributes are not a dict")
        plain.append(is_plain)
        body = bodies[i]
        if type(body) is not str:
            bodies[i] = otlp_value(body, budget)
        texts[i], versions[i], events[i] = _text(texts[i]), _text(versions[i]), _text(events[i])
        if type(scopes[i]) is not str:
            scopes[i] = str(scopes[i])
    fields[3], fields[4], fields[5] = texts, bodies, attributes
    fields[9], fields[10], fields[11] = scopes, versions, events
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
