"""Coalescing shortcuts: records queued into exactly the SDK's ``BatchLogRecordProcessor``
or ``BatchSpanProcessor`` without their hooks, the readable log copy built directly, the
plain dict inside ``BoundedAttributes``, a finished span's fields read in one call, and the
SDK's no-op span hooks skipped.

Each shortcut has the public-API twin it stands for; the self-check compares the two on
objects built here, and the module-level names are bound to the shortcut only when the
check passes (``otelkit._sdk._check.checked``). Callers use the names and never know which
one they got. The two queue shortcuts need a real batch processor (a worker thread) for
their check, so they check themselves on first use rather than at import.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import LogRecord
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit._sdk._check import checked

__all__ = [
    "PLAIN_ATTRIBUTES_OK",
    "READABLE_COPY_OK",
    "SPAN_FIELDS_OK",
    "SpanField",
    "batch_span_queue",
    "call_on_ending",
    "log_forward_ok",
    "log_forwarder",
    "plain_attributes",
    "queue_readable_copy",
    "readable_copy",
    "skip_noop_hooks",
    "span_fields",
    "span_ids",
]


# -- attributes as a plain dict -------------------------------------------------------------
def _plain_attributes_private(attributes: Any) -> Any:
    # The dict inside: BoundedAttributes' Mapping methods (even len) are Python calls, and
    # its get() of a missing name raises and catches a KeyError.
    return attributes._dict if type(attributes) is BoundedAttributes else attributes


def _plain_attributes_public(attributes: Any) -> Any:
    return attributes


def _check_plain_attributes() -> bool:
    """The dict has the wrapper's items, follows its changes, and a dict passes as is."""
    bounded = BoundedAttributes(attributes={"a": 1, "b": (2, 3)}, immutable=False)
    plain = _plain_attributes_private(bounded)
    bounded["c"] = "x"
    return (
        type(plain) is dict
        and plain == dict(bounded.items()) == {"a": 1, "b": (2, 3), "c": "x"}
        and _plain_attributes_private(plain) is plain
        and _plain_attributes_private(None) is None
    )


PLAIN_ATTRIBUTES_OK = checked("plain_attributes", _check_plain_attributes)
"""Whether :data:`plain_attributes` hands out the dict inside a ``BoundedAttributes``."""

plain_attributes: Callable[[Any], Mapping[str, Any] | None] = (
    _plain_attributes_private if PLAIN_ATTRIBUTES_OK else _plain_attributes_public
)
"""Attributes (a ``BoundedAttributes``, a mapping or ``None``) for reading: the plain dict
inside a ``BoundedAttributes`` when the shortcut passed its check, else the same object."""

# -- the readable copy of a log record -----------------------------------------------------
_new = object.__new__


def _readable_copy_public(record: ReadWriteLogRecord) -> ReadableLogRecord:
    # What BatchLogRecordProcessor.on_emit builds: a shallow copy of the API record with an
    # empty context (the queue must not keep the caller's context alive).
    api = copy.copy(record.log_record)
    api.context = Context()
    resource = record.resource
    return ReadableLogRecord(
        log_record=api,
        resource=resource if resource is not None else Resource.create({}),
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )


def _readable_copy_private(record: ReadWriteLogRecord) -> ReadableLogRecord:
    # The same, without copy.copy's Python-level dispatch and the frozen dataclass's
    # __init__ (which sets each field through object.__setattr__).
    api: Any = record.log_record
    if type(api) is LogRecord:
        copied = _new(LogRecord)
        copied.__dict__.update(api.__dict__)
    else:
        copied = copy.copy(api)
    copied.context = Context()
    resource = record.resource
    readable = _new(ReadableLogRecord)
    readable.__dict__.update(
        log_record=copied,
        resource=resource if resource is not None else Resource.create({}),
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )
    return readable


def _check_record() -> ReadWriteLogRecord:
    from opentelemetry._logs import SeverityNumber

    api = LogRecord(
        timestamp=5,
        observed_timestamp=6,
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body="check",
        attributes={"code.line.number": 7},
        event_name="otelkit.check",
    )
    return ReadWriteLogRecord(
        api,
        resource=Resource.create({"service.name": "otelkit-check"}),
        instrumentation_scope=InstrumentationScope("otelkit.sdk-check"),
    )


def _check_readable_copy() -> bool:
    """The shortcut's copy equals the public construction's, field by field."""
    record = _check_record()
    ours, public = _readable_copy_private(record), _readable_copy_public(record)
    return (
        type(ours) is ReadableLogRecord
        and type(ours.log_record) is LogRecord
        and ours.log_record is not record.log_record
        and vars(ours.log_record) == vars(public.log_record)
        and vars(ours).keys() == vars(public).keys()
        and (ours.resource, ours.instrumentation_scope, ours.limits)
        == (public.resource, public.instrumentation_scope, public.limits)
        and ours.to_json() == public.to_json()
    )


READABLE_COPY_OK = checked("readable_copy", _check_readable_copy)
"""Whether :data:`readable_copy` builds the copy without the dataclass machinery."""

readable_copy: Callable[[ReadWriteLogRecord], ReadableLogRecord] = (
    _readable_copy_private if READABLE_COPY_OK else _readable_copy_public
)
"""What ``BatchLogRecordProcessor.on_emit`` queues for a record."""


def queue_readable_copy(
    emit: Callable[[ReadableLogRecord], None], record: ReadWriteLogRecord
) -> None:
    """``emit(readable_copy(record))``: one frame, for ``functools.partial``."""
    emit(readable_copy(record))


# -- forwarding into exactly a BatchLogRecordProcessor -------------------------------------
def _batch_queue(processor: BatchLogRecordProcessor) -> Callable[[ReadableLogRecord], None]:
    emit: Callable[[ReadableLogRecord], None] = processor._batch_processor.emit
    return emit


@functools.cache
def _log_forward_ok() -> bool:
    # Checked on first use, not at import: it needs a real BatchLogRecordProcessor, whose
    # worker thread an import should not start.
    def check() -> bool:
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

        exported = []
        for shortcut in (False, True):
            exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
            processor = BatchLogRecordProcessor(exporter)
            try:
                if shortcut:
                    queue_readable_copy(_batch_queue(processor), _check_record())
                else:
                    processor.on_emit(_check_record())
                processor.force_flush(5000)
                exported.append([r.to_json() for r in exporter.get_finished_logs()])
            finally:
                processor.shutdown()  # type: ignore[no-untyped-call]
        return len(exported[0]) == 1 and exported[0] == exported[1]

    return checked("log_forwarder", check)


def log_forward_ok() -> bool:
    """Whether :func:`log_forwarder` feeds a ``BatchLogRecordProcessor``'s queue directly
    (checked once, on the first call)."""
    return _log_forward_ok()


def log_forwarder(downstream: LogRecordProcessor) -> Callable[[ReadWriteLogRecord], None]:
    """A callable forwarding one record to ``downstream`` as its ``on_emit`` does: for
    exactly a ``BatchLogRecordProcessor`` (a subclass may override its hook), the copy its
    hook would queue, queued directly; else ``downstream.on_emit`` itself."""
    if type(downstream) is not BatchLogRecordProcessor or not _log_forward_ok():
        return downstream.on_emit
    return functools.partial(queue_readable_copy, _batch_queue(downstream))


# -- forwarding into exactly a BatchSpanProcessor ------------------------------------------
@functools.cache
def _span_queue_ok() -> bool:
    # As _log_forward_ok: checked on first use, with a real BatchSpanProcessor.
    def check() -> bool:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        processor = BatchSpanProcessor(exporter)
        try:
            span: Any = TracerProvider(shutdown_on_exit=False).get_tracer("otelkit").start_span("c")
            span.end()
            processor._batch_processor.emit(span)
            processor.force_flush(5000)
            return list(exporter.get_finished_spans()) == [span]
        finally:
            processor.shutdown()  # type: ignore[no-untyped-call]

    return checked("batch_span_queue", check)


def batch_span_queue(downstream: SpanProcessor) -> Callable[[ReadableSpan], None] | None:
    """The queue of ``downstream`` when it is exactly a ``BatchSpanProcessor`` and the
    shortcut passed its check (the caller makes the hook's sampled check first), else
    ``None``: the caller then calls ``downstream.on_end``."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if type(downstream) is not BatchSpanProcessor or not _span_queue_ok():
        return None
    emit: Callable[[ReadableSpan], None] = downstream._batch_processor.emit
    return emit


# -- the SDK's span hooks that do nothing ---------------------------------------------------
def _sdk_noop_hooks() -> dict[str, frozenset[Any]]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    # getattr with a default: a release without the private hook must not break the import.
    return {
        name: frozenset(
            hook
            for cls in (SpanProcessor, BatchSpanProcessor, SimpleSpanProcessor)
            if (hook := getattr(cls, name, None)) is not None
        )
        for name in ("on_start", "_on_ending")
    }


_NOOP_HOOKS = _sdk_noop_hooks()


def skip_noop_hooks(wrapper: SpanProcessor, downstream: SpanProcessor) -> None:
    """Where ``downstream``'s ``on_start`` or ``_on_ending`` (the private hook the SDK calls
    on every processor before a span ends) is the SDK's own no-op, bind ``wrapper``'s to it
    directly: no wrapper frame per span. Otherwise ``wrapper`` keeps its forwarding hook."""
    for name, noops in _NOOP_HOOKS.items():
        if getattr(type(downstream), name, None) in noops:
            setattr(wrapper, name, getattr(downstream, name))


def call_on_ending(downstream: SpanProcessor, span: Any) -> None:
    """Call ``downstream``'s ``_on_ending`` hook with ``span``, if it has one."""
    hook = getattr(downstream, "_on_ending", None)
    if hook is not None:
        hook(span)


# -- a finished span's fields in one call ---------------------------------------------------
class SpanField:
    """Positions in the tuple :data:`span_fields` returns."""

    NAME, KIND, STATUS_CODE, STATUS_DESCRIPTION, START_TIME, END_TIME = range(6)
    RESOURCE, SCOPE, ATTRIBUTES, CONTEXT = range(6, 10)


def _span_ids_public(span: ReadableSpan) -> tuple[Any, ...]:
    return span.context, span.parent


def _span_ids_private(span: Any) -> tuple[Any, ...]:
    # The fields behind the properties: the interpreter specialises these loads, where each
    # property is a Python call (three times what this whole function costs).
    return span._context, span._parent


def _span_fields_public(span: ReadableSpan) -> tuple[Any, ...]:
    status = span.status
    return (
        span.name,
        span.kind,
        status.status_code,
        status.description,
        span.start_time,
        span.end_time,
        span.resource,
        span.instrumentation_scope,
        span.attributes,
        span.context,
    )


def _span_fields_private(span: Any) -> tuple[Any, ...]:
    # As _span_ids_private; the attributes without the mappingproxy the property wraps
    # them in on every call.
    status = span._status
    return (
        span._name,
        span._kind,
        status._status_code,
        status._description,
        span._start_time,
        span._end_time,
        span._resource,
        span._instrumentation_scope,
        span._attributes,
        span._context,
    )


def _check_span_fields() -> bool:
    """Both getters read the same values from real spans (a root, a child, an error) and
    from a ``ReadableSpan`` built directly (as the relay host builds them)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("otelkit", "1")
    root: Any = tracer.start_span("root", kind=SpanKind.SERVER, attributes={"a": 1})
    child: Any = tracer.start_span("child", context=trace.set_span_in_context(root))
    child.set_status(Status(StatusCode.ERROR, "broken"))
    child.end()
    root.end()
    built = ReadableSpan("built", root.context, attributes={"b": "x"}, start_time=1, end_time=2)
    for span in (root, child, built):
        ours, public = _span_fields_private(span), _span_fields_public(span)
        attributes = SpanField.ATTRIBUTES
        if not (
            ours[:attributes] + ours[attributes + 1 :]
            == public[:attributes] + public[attributes + 1 :]
            and dict(_plain_attributes_private(ours[attributes]) or {}) == dict(public[attributes])
            and _span_ids_private(span) == _span_ids_public(span)
        ):
            return False
    return bool(_span_ids_private(child)[1] == root.context)


SPAN_FIELDS_OK = checked("span_fields", _check_span_fields)
"""Whether :data:`span_fields` and :data:`span_ids` read the fields behind the properties."""

span_ids: Callable[[ReadableSpan], tuple[Any, ...]] = (
    _span_ids_private if SPAN_FIELDS_OK else _span_ids_public
)
"""A finished span's ``(context, parent)``, as its properties give them."""

span_fields: Callable[[ReadableSpan], tuple[Any, ...]] = (
    _span_fields_private if SPAN_FIELDS_OK else _span_fields_public
)
"""A finished span's ``(name, kind, status_code, status_description, start_time, end_time,
resource, instrumentation_scope, attributes, context)`` as its properties give them (positions:
:class:`SpanField`); the attributes for reading only (pass them to :data:`plain_attributes`)."""
