"""Forwarding to the SDK's batch processors without the per-record overhead of their hooks.

For exactly ``BatchSpanProcessor`` and ``BatchLogRecordProcessor`` (a subclass may override
its hook, so it gets the hook), a coalescing processor does what the hook does and queues
into the processor's ``_batch_processor``, as the hook would (the SDK is pinned to one minor
version for this; ``tests/coalesce/test_forward.py`` checks the equivalence):

- a span: the hook's sampled check reads three Python properties; the span processor reads
  the flag from the ``SpanContext`` tuple instead (see ``CoalescingSpanProcessor.on_end``);
- a log record: the hook queues a ``ReadableLogRecord`` holding a shallow copy of the API
  record whose context is replaced by an empty one (so the queue does not keep the caller's
  context alive). :func:`queue_readable_copy` builds the same copy without ``copy.copy`` and
  the frozen dataclass's ``__init__`` (``benchmarks/coalesce_steps.py`` times both).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = ["batch_span_queue", "log_forwarder", "queue_readable_copy"]

_new = object.__new__


def batch_span_queue(downstream: SpanProcessor) -> Callable[[ReadableSpan], None] | None:
    """The queue of ``downstream`` when it is exactly a ``BatchSpanProcessor`` (the caller
    makes the hook's sampled check first), else ``None``."""
    if type(downstream) is not BatchSpanProcessor:
        return None
    emit: Callable[[ReadableSpan], None] = downstream._batch_processor.emit
    return emit


def log_forwarder(downstream: LogRecordProcessor) -> Callable[[ReadWriteLogRecord], None]:
    """A callable forwarding one record to ``downstream`` as its ``on_emit`` does: for
    exactly a ``BatchLogRecordProcessor``, :func:`queue_readable_copy` into its queue (a
    ``functools.partial``: no frame of its own); else the downstream's ``on_emit`` itself."""
    if type(downstream) is not BatchLogRecordProcessor:
        return downstream.on_emit
    return functools.partial(queue_readable_copy, downstream._batch_processor.emit)


def queue_readable_copy(
    emit: Callable[[ReadableLogRecord], None], record: ReadWriteLogRecord
) -> None:
    """``emit`` what ``BatchLogRecordProcessor.on_emit`` queues for ``record``: a
    ``ReadableLogRecord`` with a shallow copy of the API record (its context an empty
    ``Context``), the record's scope and limits, and its resource (an empty
    ``Resource.create({})`` if it has none)."""
    api: Any = record.log_record
    if type(api) is LogRecord:
        # copy.copy's result for a plain instance (no __copy__, no slots, no custom
        # __reduce_ex__), without its Python-level dispatch.
        copied = _new(LogRecord)
        copied.__dict__.update(api.__dict__)
    else:
        copied = copy.copy(api)
    copied.context = Context()
    resource = record.resource
    readable = _new(ReadableLogRecord)
    # A frozen dataclass: its __init__ sets each field through object.__setattr__.
    readable.__dict__.update(
        log_record=copied,
        resource=resource if resource is not None else Resource.create({}),
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )
    emit(readable)
