"""The drop ledger: every record otelkit's pipeline drops is counted here and reported.

Principle: nothing silently lost. A component that drops a record (a full queue, a failed
export, a shutdown deadline) calls :meth:`DropLedger.add`; the ledger counts it on the
``otelkit.export.dropped`` metric at once and, at most once per ``interval``, reports what
the interval dropped as one WARN log record (to the attached log processor) and one line
on stderr (which a broken pipeline cannot swallow).
"""

from __future__ import annotations

import functools
import math
import sys
import threading
from typing import TextIO

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.metrics import Counter, MeterProvider, get_meter_provider
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._fork import after_fork_in_child

__all__ = ["DropLedger"]

_SCOPE = InstrumentationScope("otelkit.export")
_Key = tuple[str, str]


def _counter(meter_provider: MeterProvider) -> Counter:
    return meter_provider.get_meter("otelkit.export").create_counter(
        "otelkit.export.dropped",
        unit="{record}",
        description="Records otelkit's pipeline dropped, by signal and reason",
    )


class DropLedger:
    """Counts every record otelkit's pipeline drops, by signal and reason, and reports them.

    ``signal`` is ``"logs"``, ``"spans"`` or ``"metrics"``; ``reason`` is a short,
    low-cardinality word chosen by the caller (``"queue_full"``, ``"export_failed"``,
    ``"shutdown"``, ...). The first drop after a quiet period arms one timer; when it
    fires, the drops of that interval are reported once. After ``os.fork()`` the child's
    ledger starts empty: pending counts *and* :meth:`totals` are reset there, so a child
    counts only its own drops (the parent's stay the parent's).
    """

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        clock: Clock | None = None,
        interval: float = 60.0,
        stderr: TextIO | None = None,
    ) -> None:
        number = isinstance(interval, (int, float)) and not isinstance(interval, bool)
        if not (number and 0 < interval < math.inf):
            raise ValueError(f"DropLedger: interval must be a positive number, got {interval!r}")
        self._clock = clock or REAL_CLOCK
        self._interval = float(interval)
        self._stderr = stderr
        self._counter = _counter(meter_provider or get_meter_provider())
        self._target: tuple[LogRecordProcessor, Resource] | None = None
        self._attributes: dict[_Key, dict[str, str]] = {}
        self._reset()
        after_fork_in_child(self, DropLedger._reset)

    def _reset(self) -> None:
        # Also the fork hook: the parent's lock may be held and its timer does not exist here.
        self._lock = threading.Lock()
        self._pending: dict[_Key, int] = {}
        self._totals: dict[_Key, int] = {}
        self._total = 0
        self._armed = False
        self._generation = 0  # identifies the armed timer; a stale one finds a newer number
        self._timer: TimerHandle | None = None

    def add(self, signal: str, reason: str, n: int = 1) -> None:
        """Count ``n`` records of ``signal`` dropped for ``reason`` (thread-safe, never raises)."""
        try:
            if n <= 0:
                return
            key = (signal, reason)
            with self._lock:
                self._pending[key] = self._pending.get(key, 0) + n
                self._totals[key] = self._totals.get(key, 0) + n
                self._total += n
                counter = self._counter  # read with the totals: see bind_meter_provider
                arm = not self._armed
                if arm:
                    self._armed = True
                    self._generation += 1
                    generation = self._generation
            attributes = self._attributes.get(key)
            if attributes is None:
                attributes = self._attributes.setdefault(key, {"signal": signal, "reason": reason})
            counter.add(n, attributes)
            if arm:
                self._arm(generation)
        except Exception as exc:  # noqa: BLE001 - counting a drop must never hurt the caller
            report_internal_error("drops", exc)

    def _arm(self, generation: int) -> None:
        # call_later runs outside our lock: a FakeClock runs timers under its own lock, and
        # taking the two in opposite orders could deadlock.
        handle = self._clock.call_later(self._interval, functools.partial(self._fire, generation))
        with self._lock:
            if self._generation == generation and self._armed:
                self._timer = handle
                return
        handle.cancel()  # reported meanwhile (report_now): this timer has nothing to report

    def bind_meter_provider(self, meter_provider: MeterProvider) -> None:
        """Count on ``meter_provider`` from now on (a ledger may exist before the provider
        that should carry its metric); the new counter first gets the totals so far."""
        counter = _counter(meter_provider)
        with self._lock:
            self._counter, totals = counter, dict(self._totals)
        for (signal, reason), n in totals.items():
            counter.add(n, {"signal": signal, "reason": reason})

    def attach(self, log_processor: LogRecordProcessor, resource: Resource) -> None:
        """Send each report as a WARN log record to ``log_processor``, with ``resource``."""
        self._target = (log_processor, resource)

    def report_now(self) -> None:
        """Report what is pending now (for shutdown); does nothing if nothing is pending."""
        with self._lock:
            pending = self._take()
        self._report(pending)

    def totals(self) -> dict[tuple[str, str], int]:
        """``(signal, reason) -> count`` of every drop since creation (or since a fork)."""
        with self._lock:
            return dict(self._totals)

    @property
    def total(self) -> int:
        """How many records were dropped in all, since creation (or since a fork)."""
        return self._total

    def _fire(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # report_now took this interval's counts already
            pending = self._take()
        self._report(pending)

    def _take(self) -> dict[_Key, int]:
        # Lock held. Ends the interval: the next drop arms a new timer.
        pending, self._pending = self._pending, {}
        self._armed = False
        self._generation += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return pending

    def _report(self, pending: dict[_Key, int]) -> None:
        # Called without the lock: the processor may drop and call add() itself.
        if not pending:
            return
        total = sum(pending.values())
        parts = ", ".join(f"{s} {r}={pending[s, r]}" for s, r in sorted(pending))
        noun = "record" if total == 1 else "records"
        summary = f"dropped {total} {noun} in the last {self._interval:g} s: {parts}"
        target = self._target
        if target is not None:
            self._emit(target, f"otelkit {summary}", pending)
        try:
            stream = self._stderr if self._stderr is not None else sys.stderr
            if stream is not None:  # pythonw and some daemons run without one
                stream.write("otelkit: " + summary.replace("\n", " ") + "\n")
                stream.flush()
        except Exception as exc:  # noqa: BLE001 - a closed stderr must not break the pipeline
            report_internal_error("drops", exc)

    def _emit(
        self, target: tuple[LogRecordProcessor, Resource], body: str, pending: dict[_Key, int]
    ) -> None:
        processor, resource = target
        try:
            now = int(self._clock.time() * 1e9)
            record = LogRecord(
                timestamp=now,
                observed_timestamp=now,
                context=Context(),  # not a child of whatever span the reporting thread runs
                severity_text="WARN",
                severity_number=SeverityNumber.WARN,
                body=body,
                attributes={f"otelkit.export.dropped.{s}.{r}": n for (s, r), n in pending.items()},
            )
            processor.on_emit(
                ReadWriteLogRecord(record, resource=resource, instrumentation_scope=_SCOPE)
            )
        except Exception as exc:  # noqa: BLE001 - reporting must not break the pipeline
            report_internal_error("drops", exc)
