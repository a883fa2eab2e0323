"""``CoalescingLogRecordProcessor``: floods of one log message become one record + a summary."""

from __future__ import annotations

from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit._clock import REAL_CLOCK, Clock
from otelkit._errors import report_internal_error
from otelkit._validate import check_bool, check_positive, check_positive_int
from otelkit.coalesce._common import (
    flush_downstream,
    require_methods,
    shutdown_downstream,
)
from otelkit.coalesce._keys import LogKey, ResourceTokens, resolve_log_key
from otelkit.coalesce._metrics import CoalesceMetrics
from otelkit.coalesce._summaries import LogSample, log_origin, log_sample, summary_log_record
from otelkit.coalesce._window import SUPPRESS, Coalescer, Summary

__all__ = ["CoalescingLogRecordProcessor"]

_WHERE = "CoalescingLogRecordProcessor"
_COMPONENT = "coalesce.logs"


class CoalescingLogRecordProcessor(LogRecordProcessor):
    """Wrap ``downstream`` (typically a ``BatchLogRecordProcessor``) so that repeats merge.

    The first record of a key goes downstream at once; repeats inside ``window`` seconds are
    counted and dropped; when the window ends with repeats, one summary record goes
    downstream: the first record's body and trace context with the first repeat's severity,
    scope, resource and attributes (the key's fields are the same in both), plus
    ``otelkit.coalesce.count`` (the first included),
    ``otelkit.coalesce.window`` (seconds), ``otelkit.coalesce.first_timestamp`` and
    ``otelkit.coalesce.last_timestamp`` (ns since the epoch).

    ``key`` is ``"message"`` (default: logger, severity, rendered body, exception type),
    ``"call_site"`` (logger, severity, code file + line, exception type),
    :func:`~otelkit.coalesce.attributes_key` or any callable(record) -> Hashable. With
    ``per_resource`` (default) the record's service identity (its resource less
    ``process.*``, ``service.instance.id`` and ``otelkit.relay.child``) is part of the key:
    repeats from the processes of one service (relayed children, the host) merge, repeats
    from different services do not; with ``per_resource=False`` any resources merge. A
    summary carries the first repeat's resource. At most ``max_keys`` windows are open;
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
        self._resources = ResourceTokens(
            per_resource=check_bool(_WHERE, "per_resource", per_resource)
        )
        self._metrics = CoalesceMetrics(meter_provider, "logs")
        self._engine: Coalescer[LogSample] = Coalescer(
            window=window,
            on_summary=self._emit_summary,
            max_keys=max_keys,
            clock=self._clock,
            label=_COMPONENT,
            on_tick=self._publish,
            remember=log_origin,
            capture=log_sample,
        )

    @property
    def downstream(self) -> LogRecordProcessor:
        """The wrapped processor."""
        return self._downstream

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Forward ``log_record`` unless it repeats a key inside its window. Never raises."""
        if self._passes(log_record):
            try:
                self._downstream.on_emit(log_record)
            except Exception as exc:  # noqa: BLE001 - a failing downstream never reaches the caller
                report_internal_error(_COMPONENT + ".downstream", exc)

    def _passes(self, log_record: ReadWriteLogRecord) -> bool:
        """Whether ``log_record`` goes downstream (it does not repeat an open window's key)."""
        try:
            lr = log_record.log_record
            key = (self._resources.token(log_record.resource), self._key(log_record))
            time_ns = lr.timestamp or lr.observed_timestamp
            return self._engine.offer(key, log_record, time_ns) is not SUPPRESS
        except Exception as exc:  # noqa: BLE001 - when in doubt, forward: lose nothing
            report_internal_error(_COMPONENT, exc)
        return True

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

    def _emit_summary(self, summary: Summary[LogSample]) -> None:
        now_ns = int(self._clock.time() * 1e9)
        self._downstream.on_emit(summary_log_record(summary, now_ns))
