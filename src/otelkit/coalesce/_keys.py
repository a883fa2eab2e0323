"""Key functions: which log records and span trees count as repeats of each other.

A key function maps a record (``ReadWriteLogRecord`` or ``ReadableLogRecord``) or a local
root span (``ReadableSpan``) to a hashable value; equal values merge. The processors add
the record's service identity (its resource less the attributes naming one process) to
every key: repeats from the processes of one service (relayed children, the host) merge into
one summary, repeats from different services never do.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from otelkit._fork import after_fork_in_child
from otelkit.errors import InvalidOptionError, OptionTypeError

__all__ = [
    "LOG_KEY_PRESETS",
    "SPAN_KEY_PRESETS",
    "AttributesKey",
    "LogKey",
    "ResourceTokens",
    "SpanKey",
    "attributes_key",
    "call_site_key",
    "freeze",
    "is_process_identity",
    "message_key",
    "resolve_log_key",
    "resolve_span_key",
    "span_error_type",
    "span_name_key",
]

AnyLogRecord = ReadWriteLogRecord | ReadableLogRecord
LogKey = Callable[[Any], Hashable]
"""A callable(ReadWriteLogRecord | ReadableLogRecord) -> Hashable."""
SpanKey = Callable[[ReadableSpan], Hashable]
"""A callable(ReadableSpan) -> Hashable, called with the local root of a span tree."""

_EXCEPTION_TYPE = "exception.type"
_ERROR_TYPE = "error.type"
_CODE_FILE_PATH = "code.file.path"
_CODE_LINE_NUMBER = "code.line.number"
_SCALARS = (str, int, float, bool, bytes, type(None))


def freeze(value: object) -> Hashable:
    """A hashable stand-in for an attribute value or a log body (lists, dicts, ...)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return tuple((k, freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return repr(value)


def _plain(member: Any) -> object:
    # An enum member's value: members hash through a Python method, their values in C.
    return None if member is None else member._value_


def _scope_name(record: AnyLogRecord) -> str | None:
    scope = record.instrumentation_scope
    return scope.name if scope is not None else None


def message_key(record: AnyLogRecord) -> tuple[Hashable, ...]:
    """The identical message: logger (scope) name, severity, rendered body, exception type.

    Only true repeats merge: ``log.warning("blocked %s", host)`` makes one key per host.
    """
    lr = record.log_record
    body = lr.body
    attributes: Any = lr.attributes
    return (
        _scope_name(record),
        _plain(lr.severity_number),
        body if type(body) is str else freeze(body),
        _readable(attributes).get(_EXCEPTION_TYPE) if attributes else None,
    )


def _readable(attributes: Any) -> Any:
    """A log record's attributes as a plain dict to look names up in (``None`` stays):
    ``BoundedAttributes.get()`` of a missing name (the usual case) raises and catches a
    ``KeyError``, where its ``copy()`` is one dict copy."""
    return attributes.copy() if attributes else attributes


def call_site_key(record: AnyLogRecord) -> Hashable:
    """The call site: logger name, severity, ``code.file.path`` + ``code.line.number``,
    exception type, whatever the message's arguments were.

    ``log.warning("blocked %s", host)`` merges across hosts. Needs the code attributes
    (``LoggingHandler(log_code_attributes=True)``); a record without them falls back to
    :func:`message_key`.
    """
    lr = record.log_record
    attributes = _readable(lr.attributes)
    path = attributes.get(_CODE_FILE_PATH) if attributes else None
    if path is None or attributes is None:
        return message_key(record)
    return (
        _scope_name(record),
        _plain(lr.severity_number),
        path,
        attributes.get(_CODE_LINE_NUMBER),
        attributes.get(_EXCEPTION_TYPE),
    )


def span_error_type(span: ReadableSpan) -> object:
    """The exception type of an ERROR span: from its ``exception`` event, else its
    ``error.type`` attribute."""
    for event in span.events:
        if event.name == "exception" and event.attributes:
            return event.attributes.get(_EXCEPTION_TYPE)
    attributes = span.attributes
    return attributes.get(_ERROR_TYPE) if attributes else None


def span_name_key(span: ReadableSpan) -> tuple[Hashable, ...]:
    """The default span-tree key: scope name, kind, root span name, status code and, for a
    span with ERROR status, the exception type (see :func:`span_error_type`)."""
    scope = span.instrumentation_scope
    code = span.status.status_code
    return (
        scope.name if scope is not None else None,
        _plain(span.kind),
        span.name,
        _plain(code),
        span_error_type(span) if code is StatusCode.ERROR else None,
    )


class AttributesKey:
    """Key on chosen attributes (see :func:`attributes_key`); works for logs and spans."""

    __slots__ = ("names",)

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def __call__(self, item: AnyLogRecord | ReadableSpan) -> Hashable:
        if isinstance(item, ReadableSpan):
            attributes: Any = item.attributes
            base: tuple[Hashable, ...] = (item.name,)
        else:
            lr = item.log_record
            attributes = _readable(lr.attributes)
            base = (_scope_name(item), _plain(lr.severity_number))
        values = tuple(freeze(attributes.get(name)) if attributes else None for name in self.names)
        return (*base, values)

    def __repr__(self) -> str:
        return f"attributes_key({', '.join(map(repr, self.names))})"


def attributes_key(*names: str) -> Callable[[AnyLogRecord | ReadableSpan], Hashable]:
    """Key on the values of the named attributes.

    For a log record the key is (logger name, severity, the values); for a span tree it is
    (root span name, the values). A missing attribute counts as ``None``.
    Example: ``attributes_key("http.route", "error.type")``.
    """
    if not names:
        raise InvalidOptionError("attributes_key needs at least one attribute name")
    for name in names:
        if not isinstance(name, str) or not name:
            raise OptionTypeError(f"attributes_key names must be non-empty strings, got {name!r}")
    return AttributesKey(tuple(names))


LOG_KEY_PRESETS: Mapping[str, LogKey] = {"message": message_key, "call_site": call_site_key}
"""Names accepted for the log processor's ``key`` option."""
SPAN_KEY_PRESETS: Mapping[str, SpanKey] = {"name": span_name_key}
"""Names accepted for the span processor's ``key`` option."""


def _resolve(key: object, presets: Mapping[str, Callable[[Any], Hashable]], what: str) -> Any:
    if isinstance(key, str):
        try:
            return presets[key]
        except KeyError:
            accepted = ", ".join(repr(name) for name in presets)
            raise InvalidOptionError(
                f"key must be one of {accepted}, attributes_key(...) or a callable({what}) "
                f"-> Hashable; got {key!r}"
            ) from None
    if callable(key):
        return key
    raise OptionTypeError(
        f"key must be a preset name, attributes_key(...) or a callable({what}) -> Hashable; "
        f"got {type(key).__name__}"
    )


def resolve_log_key(key: str | LogKey) -> LogKey:
    """The key function named or given by the log processor's ``key`` option."""
    resolved: LogKey = _resolve(key, LOG_KEY_PRESETS, "log record")
    return resolved


def resolve_span_key(key: str | SpanKey) -> SpanKey:
    """The key function named or given by the span processor's ``key`` option."""
    resolved: SpanKey = _resolve(key, SPAN_KEY_PRESETS, "span")
    return resolved


_PROCESS_IDENTITY = frozenset({"service.instance.id", "otelkit.relay.child"})


def is_process_identity(name: str) -> bool:
    """Whether a resource attribute names one process rather than the service it belongs to
    (``process.*``, ``service.instance.id``, ``otelkit.relay.child``)."""
    return name.startswith("process.") or name in _PROCESS_IDENTITY


class ResourceTokens:
    """A small int per distinct service identity: the resource without the attributes that
    name one process (see :func:`is_process_identity`), cached per resource object.

    Records of one service merge whichever process (a relayed child, a pre-fork worker, the
    host) emitted them; records of different services or deployments never do.

    The host's own records share one resource object (a hit costs an identity check);
    relayed records may bring a new but equal object per batch, which maps to the same
    token. An int hashes in no time, so keys stay cheap. The caches are bounded and never
    confused by reused object ids (at worst an equal resource seen again much later gets a
    new token, so its windows start afresh). One lock guards them; the most recent
    resource and its token are one pair, replaced whole, read without it.
    """

    _MAX_CACHED = 1024

    def __init__(self, *, per_resource: bool = True) -> None:
        self.per_resource = per_resource
        """``False``: every resource gets token ``0`` (the processors' ``per_resource``)."""
        self._last: tuple[Resource | None, int] = (None, 0)
        self._by_object: dict[int, tuple[weakref.ref[Resource], int]] = {}
        self._by_identity: dict[Hashable, int] = {}
        self._next = 1
        self._reset()
        after_fork_in_child(self, ResourceTokens._reset)

    def _reset(self) -> None:
        # Also the fork hook: the parent's lock may have been held at fork time.
        self._lock = threading.Lock()

    def token(self, resource: Resource | None) -> int:
        """The token of ``resource`` (``0`` for no resource)."""
        if resource is None or not self.per_resource:
            return 0
        last = self._last  # one read of a pair that is replaced whole, never changed
        if resource is last[0]:
            return last[1]
        with self._lock:
            cached = self._by_object.get(id(resource))
            if cached is not None and cached[0]() is resource:
                token = cached[1]
            else:
                identity = _service_identity(resource)
                token = self._by_identity.get(identity, 0)
                if not token:
                    if len(self._by_identity) >= self._MAX_CACHED:
                        self._by_identity.clear()
                    token = self._by_identity[identity] = self._next
                    self._next += 1
                if len(self._by_object) >= self._MAX_CACHED:
                    self._by_object.clear()
                self._by_object[id(resource)] = (weakref.ref(resource), token)
            self._last = (resource, token)
            return token


def _service_identity(resource: Resource) -> Hashable:
    attributes = resource.attributes.items()
    kept = sorted((k, freeze(v)) for k, v in attributes if not is_process_identity(k))
    return tuple(kept), resource.schema_url
