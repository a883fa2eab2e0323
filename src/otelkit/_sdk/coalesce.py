"""Two shortcuts: the readable log copy that otelkit's batch processor queues, built
directly, and the SDK's private hook before a span ends, forwarded by the coalescing span
processor (a wrapper must not swallow its downstream's hooks).

``readable_copy`` has the public-API twin it stands for; the self-check compares the two
on a record built here, and the name is bound to the shortcut only when the check passes
(``otelkit._sdk._check.checked``). ``call_on_ending`` needs no check: it calls the hook
only where the processor has one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit._sdk._check import checked

__all__ = ["READABLE_COPY_OK", "call_on_ending", "readable_copy"]


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


# -- the hook before a span ends ------------------------------------------------------------
def call_on_ending(downstream: SpanProcessor, span: Any) -> None:
    """Call ``downstream``'s ``_on_ending`` hook with ``span``, if it has one."""
    hook = getattr(downstream, "_on_ending", None)
    if hook is not None:
        hook(span)
