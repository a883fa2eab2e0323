"""``CoalescingLogRecordProcessor``: floods of one log message become one record + a summary."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import (
    LogRecordLimits,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceFlags

from otelkit._clock import REAL_CLOCK, Clock
from otelkit._errors import report_internal_error
from otelkit._sdk.logs import attribute_limits
from otelkit._validate import check_bool, check_positive, check_positive_int
from otelkit.coalesce._common import (
    flush_downstream,
    require_methods,
    shutdown_downstream,
    summary_attributes,
)
from otelkit.coalesce._forward import log_forwarder
from otelkit.coalesce._keys import (
    LogKey,
    ResourceTokens,
    message_fields_key,
    message_key,
    resolve_log_key,
)
from otelkit.coalesce._metrics import CoalesceMetrics
from otelkit.coalesce._snapshots import LogSnapshots, Snapshot
from otelkit.coalesce._window import (
    SUPPRESS,
    Coalescer,
    Summary,
)

__all__ = ["CoalescingLogRecordProcessor"]

_WHERE = "CoalescingLogRecordProcessor"
_COMPONENT = "coalesce.logs"

AnyLogRecord = ReadWriteLogRecord | ReadableLogRecord
_BODY_INDEX = 3
"""Where the body sits in the default key (token, scope, severity, body, exception type)."""


class CoalescingLogRecordProcessor(LogRecordProcessor):
    """Wrap ``downstream`` (typically a ``BatchLogRecordProcessor``) so that repeats merge.

    The first record of a key goes downstream at once; repeats inside ``window`` seconds are
    counted and dropped; when the window ends with repeats, one summary record goes
    downstream: like the first record (severity, body, scope, trace context, resource,
    attributes) plus ``otelkit.coalesce.count`` (the first included),
    ``otelkit.coalesce.window`` (seconds), ``otelkit.coalesce.first_timestamp`` and
    ``otelkit.coalesce.last_timestamp`` (ns since the epoch).

    ``key`` is ``"message"`` (default: logger, severity, rendered body, exception type),
    ``"call_site"`` (logger, severity, code file + line, exception type),
    :func:`~otelkit.coalesce.attributes_key` or any callable(record) -> Hashable. With
    ``per_resource`` (default) the record's service identity (its resource less
    ``process.*``, ``service.instance.id`` and ``otelkit.relay.child``) is part of the key:
    repeats from the processes of one service (relayed children, the host) merge, repeats
    from different services do not; with ``per_resource=False`` any resources merge. A
    summary carries the first record's resource. At most ``max_keys`` windows are open;
    beyond that new keys pass through and count as ``otelkit.coalesce.overflow``.
    """

    def __init__(
        self,
        downstream: LogRecordProcessor,
        *,
        window: float = 10.0,
        key: str | LogKey = "message",
        max_keys: int = 10_000,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
        per_resource: bool = True,
    ) -> None:
        require_methods(
            "downstream", downstream, ("on_emit", "force_flush", "shutdown"), "LogRecordProcessor"
        )
        check_positive(_WHERE, "window", window)
        check_positive_int(_WHERE, "max_keys", max_keys)
        self._key = resolve_log_key(key)
        self._clock = clock if clock is not None else REAL_CLOCK
        self._downstream = downstream
        # downstream.on_emit, or for exactly a BatchLogRecordProcessor the same, cheaper.
        self._forward = log_forwarder(downstream)
        self._resources = ResourceTokens(
            per_resource=check_bool(_WHERE, "per_resource", per_resource)
        )
        self._metrics = CoalesceMetrics(meter_provider, "logs")
        # The default key: a window opens under the record's body alone, and its key is
        # built only if that body comes again (see Coalescer.sight).
        self._by_body = self._key is message_key
        self._snapshots = LogSnapshots()
        self._engine: Coalescer[Snapshot] = Coalescer(
            window=window,
            on_summary=self._emit_summary,
            max_keys=max_keys,
            clock=self._clock,
            label=_COMPONENT,
            on_tick=self._publish,
            capture=self._snapshots.capture,
            hint_index=_BODY_INDEX if self._by_body else None,
            key_of_first=self._key_of_first if self._by_body else None,
        )

    @property
    def downstream(self) -> LogRecordProcessor:
        """The wrapped processor."""
        return self._downstream

    @property
    def coalescer(self) -> Coalescer[Snapshot]:
        """The engine (for its counters: ``suppressed``, ``overflow``, ``open_keys``)."""
        return self._engine

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Forward ``log_record`` unless it repeats a key inside its window. Never raises."""
        try:
            lr = log_record.log_record
            body = lr.body
            time_ns = lr.timestamp or lr.observed_timestamp
            key: Hashable
            if not self._by_body:
                key = (self._resources.token(log_record.resource), self._key(log_record))
            elif type(body) is str and self._engine.sight(body, log_record, time_ns):
                key = None  # settled by its body alone: a new message (or overflow)
            else:
                key = self._message_key(
                    log_record.resource,
                    log_record.instrumentation_scope,
                    lr.severity_number,
                    body,
                    lr.attributes,
                )
            if key is not None and self._engine.offer(key, log_record, time_ns) is SUPPRESS:
                return
        except Exception as exc:  # noqa: BLE001 - when in doubt, forward: lose nothing
            report_internal_error(_COMPONENT, exc)
        try:
            self._forward(log_record)
        except Exception as exc:  # noqa: BLE001 - a failing downstream never reaches the caller
            report_internal_error(_COMPONENT + ".downstream", exc)

    def enabled(
        self,
        *,
        context: Context | None = None,
        instrumentation_scope: InstrumentationScope | None = None,
        severity_number: SeverityNumber | None = None,
        event_name: str | None = None,
    ) -> bool:
        """As the downstream processor answers (``True`` if it cannot say)."""
        try:
            return bool(
                self._downstream.enabled(
                    context=context,
                    instrumentation_scope=instrumentation_scope,
                    severity_number=severity_number,
                    event_name=event_name,
                )
            )
        except Exception as exc:  # noqa: BLE001 - never break the logging call
            report_internal_error(_COMPONENT + ".downstream", exc)
            return True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Emit every pending summary, then flush downstream within what is left of
        ``timeout_millis``."""
        deadline = REAL_CLOCK.monotonic() + timeout_millis / 1000
        self._engine.flush()
        self._publish()
        return flush_downstream(self._downstream, deadline, _COMPONENT)

    def shutdown(self) -> None:
        """Emit every pending summary, stop coalescing, shut the downstream down."""
        self._engine.close()
        self._publish()
        shutdown_downstream(self._downstream, _COMPONENT)

    def _publish(self) -> None:
        self._metrics.add(*self._engine.take_counts())

    def _message_key(
        self, resource: Any, scope: Any, severity_number: Any, body: Any, attributes: Any
    ) -> Hashable:
        # The default key: the record's service identity, then message_key's fields.
        return (
            self._resources.token(resource),
            *message_fields_key(scope, severity_number, body, attributes),
        )

    def _key_of_first(self, body: Hashable, first: Snapshot) -> Hashable:
        # The key of a window opened by its body alone, from its snapshot.
        kept = self._snapshots.first(first)
        return self._message_key(
            kept.resource, kept.scope, kept.severity_number, body, kept.attributes
        )

    def _emit_summary(self, summary: Summary[Snapshot]) -> None:
        self._downstream.on_emit(self._summary_record(summary))

    def _summary_record(self, summary: Summary[Snapshot]) -> ReadWriteLogRecord:
        first = self._snapshots.first(summary.first)
        limits = first.limits if first.limits is not None else LogRecordLimits()
        ours = summary_attributes(summary)
        attributes = first.attributes or {}  # a fresh dict
        for name in ours:
            attributes.pop(name, None)
        room = attribute_limits(limits)[0]
        if room is not None and len(attributes) > room - len(ours):
            # Ours must survive the limit: drop the first record's oldest attributes.
            keep = max(0, room - len(ours))
            attributes = dict(list(attributes.items())[len(attributes) - keep :])
        attributes.update(ours)
        now_ns = int(self._clock.time() * 1e9)
        record = LogRecord(
            timestamp=now_ns,
            observed_timestamp=now_ns,
            severity_text=first.severity_text,
            severity_number=first.severity_number,
            body=first.body,
            attributes=attributes,
            event_name=first.event_name,
        )
        # The first record's trace context, whatever the timer thread's context is.
        record.trace_id = first.trace_id or 0
        record.span_id = first.span_id or 0
        record.trace_flags = TraceFlags(first.trace_flags or 0)
        return ReadWriteLogRecord(
            log_record=record,
            resource=first.resource,
            instrumentation_scope=first.scope,
            limits=limits,
        )
