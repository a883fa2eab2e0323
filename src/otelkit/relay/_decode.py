"""A child's frames back into SDK records the host's processors accept.

Log frames carry the child's buffered entries (``otelkit.relay._log_frames``), span frames
OTLP protobuf. A frame is decoded and checked completely before anything is emitted, so a
malformed frame emits nothing. Records keep their timestamps, severity, body, attributes
(``exception.*`` included), trace and span ids, scope, and the child's resource.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as PbScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.sdk._logs import LogRecordLimits, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from otelkit._sdk.logs import attribute_limits
from otelkit.relay._log_frames import LogColumns, LogEntry, decode_log_payload
from otelkit.relay._records import LogFields, build_log_records, build_readable_log_records
from otelkit.relay._wire import FrameError

__all__ = ["Decoder"]

T = TypeVar("T")

_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_IS_REMOTE = 0x200
_SEVERITIES = {s.value: s for s in SeverityNumber}
_FLAGS = [TraceFlags(i) for i in range(256)]
# A non-empty context whose span is the invalid span: records without trace context keep
# none, and the SDK does not look up the host thread's current context for them.
_NO_SPAN = set_span_in_context(INVALID_SPAN, Context())


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(x) for x in v.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if kind == "string_value_strindex":
        raise FrameError("malformed", "string tables are not used by the relay")
    return getattr(v, kind)


def _attributes(key_values: Sequence[Any]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


def _id(raw: bytes, size: int, what: str) -> int:
    if not raw:
        return 0
    if len(raw) != size:
        raise FrameError("malformed", f"{what} must be {size} bytes, got {len(raw)}")
    return int.from_bytes(raw, "big")


class Decoder:
    """Decodes one connection's frames; caches the (usually single) child resource."""

    def __init__(self, *, limits: LogRecordLimits | None = None, fast: bool = True) -> None:
        self._limits = limits or LogRecordLimits()
        # Without a value length limit, the SDK keeps scalar values as they are.
        max_attributes, max_length = attribute_limits(self._limits)
        self._fast = fast and max_length is None
        self._max_attributes = max_attributes
        self._last_span: tuple[tuple[int, int, TraceFlags] | None, Context] = (None, _NO_SPAN)
        self._resources: dict[bytes, Resource] = {}
        self._scopes: dict[bytes, InstrumentationScope] = {}
        self._log_scopes: dict[tuple[str, str | None], InstrumentationScope] = {}
        self._last_scope: tuple[str | None, str | None, InstrumentationScope] = (
            None,
            None,
            InstrumentationScope(""),
        )

    def _resource(self, pb: PbResource) -> Resource:
        key = pb.SerializeToString()
        found = self._resources.get(key)
        if found is None:
            if len(self._resources) > 64:
                self._resources.clear()
            found = self._resources[key] = Resource(_attributes(pb.attributes))
        return found

    def _scope(self, pb: PbScope, schema_url: str) -> InstrumentationScope:
        key = pb.SerializeToString() + schema_url.encode()
        found = self._scopes.get(key)
        if found is None:
            if len(self._scopes) > 1024:
                self._scopes.clear()
            found = self._scopes[key] = InstrumentationScope(
                pb.name, pb.version or None, schema_url or None, _attributes(pb.attributes) or None
            )
        return found

    def _resource_of(self, message: bytes) -> Resource:
        # The child's resource, as its OTLP message (one per child, so nearly always a hit).
        found = self._resources.get(message)
        if found is None:
            if len(self._resources) > 64:
                self._resources.clear()
            pb = _parse(PbResource, message)
            found = self._resources[message] = Resource(_attributes(pb.attributes))
        return found

    def logs(self, payload: bytes) -> list[ReadWriteLogRecord]:
        """Every log record of a ``FRAME_LOGS`` payload (for tests: the host builds each
        record only just before it emits it)."""
        resource, entries, plain = self.log_entries(payload)
        return self.build_logs(resource, entries.rows(), plain)

    def log_entries(self, payload: bytes) -> tuple[Resource, LogColumns, list[bool]]:
        """``(resource, entries, plain)`` of a ``FRAME_LOGS`` payload, checked in full
        (``FrameError`` otherwise) but not yet SDK records (:meth:`build_log`): so a
        frame's records do not all sit in memory as SDK objects at once."""
        message, entries, plain = decode_log_payload(payload)
        return self._resource_of(message), entries, plain

    def build_log(self, resource: Resource, entry: LogEntry, plain: bool) -> ReadWriteLogRecord:
        """The SDK record of one :meth:`log_entries` entry (``plain``: its flag)."""
        return self.build_logs(resource, [entry], [plain])[0]

    def build_logs(
        self, resource: Resource, entries: Iterable[LogEntry], plain: Sequence[bool]
    ) -> list[ReadWriteLogRecord]:
        """The SDK records of :meth:`log_entries` entries (``plain``: their flags)."""
        return build_log_records(self._fields(resource, entries, plain), self._limits)

    def build_readable_logs(
        self, resource: Resource, entries: Iterable[LogEntry], plain: Sequence[bool]
    ) -> list[ReadableLogRecord]:
        """What :meth:`build_logs` builds, as the ``ReadableLogRecord`` views a batch
        processor queues (for a processor that takes relayed records readable)."""
        return build_readable_log_records(self._fields(resource, entries, plain), self._limits)

    def _fields(
        self, resource: Resource, entries: Iterable[LogEntry], plain: Sequence[bool]
    ) -> Iterator[LogFields]:
        # One at a time: each is gone before the next is made (no tuple per record for the
        # garbage collector to count while a chunk is built).
        fast = self._fast
        maxlen = self._max_attributes
        last_name, last_version, scope = self._last_scope  # records of one logger come in runs
        for entry, is_plain in zip(entries, plain, strict=True):
            (ts, observed, number, text, body, attributes, trace_id, span_id, flags, scope_name,
             scope_version, event, dropped) = entry  # fmt: skip
            if scope_name != last_name or scope_version != last_version:
                scope = self._scope_named(scope_name, scope_version)
                last_name, last_version = scope_name, scope_version
            trace_flags = _FLAGS[flags]
            if trace_id and span_id:
                # The record's context carries the child's span, as it did in the child; the
                # records of one span usually come in a row, so they share one context.
                key = (trace_id, span_id, trace_flags)
                if key != self._last_span[0]:
                    span = NonRecordingSpan(SpanContext(trace_id, span_id, True, trace_flags))
                    self._last_span = (key, set_span_in_context(span))
                context = self._last_span[1]
            else:
                context = _NO_SPAN
            if attributes is None:
                attributes = {}
            # Plain: the SDK's cleaning and limits would leave these attributes as they are.
            is_plain = (
                is_plain
                and fast
                and "" not in attributes
                and (maxlen is None or len(attributes) <= maxlen)
            )
            yield (
                ts or None,
                observed or None,
                context,
                trace_id,
                span_id,
                trace_flags,
                text,
                _SEVERITIES[number] if number else None,
                body,
                attributes,
                event,
                dropped,
                resource,
                scope,
                is_plain,
            )

    def _scope_named(self, name: str, version: str | None) -> InstrumentationScope:
        key = (name, version)
        found = self._log_scopes.get(key)
        if found is None:
            if len(self._log_scopes) > 1024:
                self._log_scopes.clear()
            found = self._log_scopes[key] = InstrumentationScope(name, version or None)
        self._last_scope = (name, version, found)
        return found

    def _each(self, groups: Iterable[tuple[Any, Any, str]], build: Callable[..., T]) -> list[T]:
        """``build(pb, resource, scope)`` for every item of every scope of every resource."""
        out: list[T] = []
        try:
            for pb_resource, scopes, items in groups:
                resource = self._resource(pb_resource)
                for group in scopes:
                    scope = self._scope(group.scope, group.schema_url)
                    out += [build(pb, resource, scope) for pb in getattr(group, items)]
        except FrameError:
            raise
        except Exception as exc:
            raise FrameError("malformed", f"undecodable {items}: {exc}") from exc
        return out

    def spans(self, payload: bytes) -> list[ReadableSpan]:
        """Every span of an ``ExportTraceServiceRequest`` payload (marked sampled)."""
        request = _parse(ExportTraceServiceRequest, payload)
        groups = ((rs.resource, rs.scope_spans, "spans") for rs in request.resource_spans)
        return self._each(groups, self._span)

    def count_spans(self, payload: bytes) -> int:
        """How many spans an ``ExportTraceServiceRequest`` payload holds, without building
        them (``FrameError`` if it does not parse)."""
        request = _parse(ExportTraceServiceRequest, payload)
        return sum(len(group.spans) for rs in request.resource_spans for group in rs.scope_spans)

    def _span(self, pb: Any, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
        trace_id = _id(pb.trace_id, 16, "trace_id")
        span_id = _id(pb.span_id, 8, "span_id")
        if not trace_id or not span_id:
            raise FrameError("malformed", "a span needs a trace_id and a span_id")
        flags = TraceFlags((pb.flags & 0xFF) | TraceFlags.SAMPLED)
        state = TraceState.from_header([pb.trace_state]) if pb.trace_state else None
        context = SpanContext(trace_id, span_id, False, flags, state)
        parent_id = _id(pb.parent_span_id, 8, "parent_span_id")
        parent = (
            SpanContext(trace_id, parent_id, bool(pb.flags & _IS_REMOTE), flags)
            if parent_id
            else None
        )
        events = [
            Event(e.name, _attributes(e.attributes) or None, e.time_unix_nano) for e in pb.events
        ]
        links = [
            Link(
                SpanContext(
                    _id(link.trace_id, 16, "link trace_id"),
                    _id(link.span_id, 8, "link span_id"),
                    bool(link.flags & _IS_REMOTE),
                    TraceFlags(link.flags & 0xFF),
                ),
                _attributes(link.attributes) or None,
            )
            for link in pb.links
        ]
        code = StatusCode(pb.status.code)
        status = Status(code, (pb.status.message or None) if code is StatusCode.ERROR else None)
        return ReadableSpan(
            name=pb.name,
            context=context,
            parent=parent,
            resource=resource,
            attributes=_attributes(pb.attributes),
            events=events,
            links=links,
            kind=_KINDS[pb.kind],
            status=status,
            start_time=pb.start_time_unix_nano,
            end_time=pb.end_time_unix_nano,
            instrumentation_scope=scope,
        )


def _parse(message_type: Any, payload: bytes) -> Any:
    try:
        return message_type.FromString(payload)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise FrameError("malformed", f"payload is not valid OTLP protobuf: {exc}") from exc
