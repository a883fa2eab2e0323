"""Spans and metrics of the job lifecycle (messaging semantic conventions + ``otelkit.job.*``).

Enqueue is a PRODUCER span ``send <queue>`` whose W3C context is stored in the row; each
attempt is a CONSUMER span ``process <queue>`` linked to (or, optionally, parented by) that
context. Every transition is a span event and a point on ``otelkit.job.transitions``.
Nothing here raises into the caller: failures are contained by ``report_internal_error``.
"""

from __future__ import annotations

import functools
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otelkit._errors import report_internal_error
from otelkit._version import __version__

__all__ = ["Counts", "GaugeSnapshot", "JobTelemetry", "error_type"]

SYSTEM = "otelkit"
_W3C = TraceContextTextMapPropagator()
_DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
_WAIT_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)  # fmt: skip  (pickup latency is milliseconds with LISTEN/NOTIFY)

TraceMode = Literal["link", "parent"]

Counts = Counter[tuple[str, ...]]
"""Counter increments gathered over a batch and added once per attribute set."""

# (queue, status) -> count, and queue -> age in seconds of the oldest ready job
GaugeSnapshot = tuple[dict[tuple[str, str], int], dict[str, float]]


def error_type(exc: BaseException) -> str:
    """``error.type`` value: the exception's qualified class name."""
    cls = type(exc)
    module = cls.__module__
    return (
        cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    )


def format_error(exc: BaseException, limit: int = 8000) -> tuple[str, str, str]:
    """(type, message, traceback) of an exception, bounded in size."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(text) > limit:
        text = text[: limit // 4] + "\n...\n" + text[-(limit * 3 // 4) :]
    return error_type(exc), str(exc)[:2000], text


class JobTelemetry:
    """Instruments of one JobStore."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        trace_mode: TraceMode,
    ) -> None:
        self._tracer = trace.get_tracer("otelkit.jobs", __version__, tracer_provider)
        self._meter = metrics.get_meter("otelkit.jobs", __version__, meter_provider)
        self._trace_mode = trace_mode
        self._last_extracted: tuple[tuple[str, str], Context] | None = None
        m = self._meter
        self._duration = m.create_histogram(
            "messaging.process.duration",
            unit="s",
            description="Duration of processing one job attempt.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._sent = m.create_counter(
            "messaging.client.sent.messages", unit="{message}", description="Jobs enqueued."
        )
        self._consumed = m.create_counter(
            "messaging.client.consumed.messages",
            unit="{message}",
            description="Jobs claimed by a worker for processing.",
        )
        self._transitions = m.create_counter(
            "otelkit.job.transitions", unit="{transition}", description="Job state changes."
        )
        self._timeouts = m.create_counter(
            "otelkit.job.timeouts",
            unit="{attempt}",
            description="Attempts abandoned because they ran longer than their timeout.",
        )
        self._scheduled = m.create_counter(
            "otelkit.job.scheduled",
            unit="{job}",
            description="Jobs enqueued by the scheduler of periodic jobs (one per period).",
        )
        self._pruned = m.create_counter(
            "otelkit.job.pruned",
            unit="{job}",
            description="Finished jobs deleted (with their history) by the retention pruner.",
        )
        self._throttled = m.create_counter(
            "otelkit.job.throttled",
            unit="{claim}",
            description="Claims that a flow limit held back: ready jobs were left waiting "
            "(reason: concurrency, key_concurrency, rate or key_rate).",
        )
        self._wait = m.create_histogram(
            "otelkit.job.queue_wait",
            unit="s",
            description="Time a job was ready before a worker claimed it.",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )

    # -- producer --------------------------------------------------------------------------
    @contextmanager
    def send_span(
        self, *, name: str, queue: str, max_attempts: int, count: int
    ) -> Iterator[tuple[Span, dict[str, str]]]:
        """A PRODUCER span around an enqueue; yields it and its W3C context carrier."""
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": queue,
            "otelkit.job.name": name,
            "otelkit.job.max_attempts": max_attempts,
        }
        if count != 1:
            attributes["messaging.batch.message_count"] = count
        with self._tracer.start_as_current_span(
            f"send {queue}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            _W3C.inject(carrier, context=trace.set_span_in_context(span))
            yield span, carrier

    def sent(self, *, span: Span, name: str, queue: str, count: int, error: str | None) -> None:
        """Record the outcome of an enqueue (after its commit or failure)."""
        attrs = {
            "messaging.system": SYSTEM,
            "messaging.operation.name": "send",
            "messaging.destination.name": queue,
            "otelkit.job.name": name,
        }
        if error is not None:
            attrs["error.type"] = error
            self._sent.add(count, attrs)
            return
        self._sent.add(count, attrs)
        self.transition(span, name=name, queue=queue, from_=None, to="queued", count=count)

    # -- consumer --------------------------------------------------------------------------
    def _extract(self, carrier: Mapping[str, str]) -> Context:
        # A batch enqueued together shares one context: parse each distinct one once.
        key = (carrier.get("traceparent", ""), carrier.get("tracestate", ""))
        cached = self._last_extracted
        if cached is not None and cached[0] == key:
            return cached[1]
        context = _W3C.extract(dict(carrier))
        self._last_extracted = (key, context)
        return context

    def start_process(
        self,
        *,
        job_id: str,
        name: str,
        queue: str,
        attempt: int,
        max_attempts: int,
        carrier: Mapping[str, str] | None,
        worker: str,
    ) -> Span:
        """Start the CONSUMER span of one attempt (not made current: callers use_span)."""
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": queue,
            "messaging.message.id": job_id,
            "messaging.client.id": worker,
            "otelkit.job.name": name,
            "otelkit.job.attempt": attempt,
            "otelkit.job.max_attempts": max_attempts,
        }
        context = None
        links: list[Link] = []
        if carrier:
            try:
                stored = self._extract(carrier)
                span_context = trace.get_current_span(stored).get_span_context()
                if span_context.is_valid:
                    if self._trace_mode == "parent":
                        context = stored
                    else:
                        links.append(Link(span_context, {"otelkit.link": "enqueue"}))
            except Exception as exc:  # noqa: BLE001 - a broken stored context must not stop the job
                report_internal_error("jobs.trace_context", exc)
        return self._tracer.start_span(
            f"process {queue}",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        )

    def consumed(
        self, *, name: str, queue: str, queue_wait: float | None, counts: Counts | None = None
    ) -> None:
        """A job was claimed: count it and its time spent ready."""
        if counts is not None:
            counts[("consumed", name, queue)] += 1
        else:
            self._consumed.add(1, _base(name, queue, "process"))
        if queue_wait is not None:
            self._wait.record(max(0.0, queue_wait), _base(name, queue, None))

    def transition(
        self,
        span: Span | None,
        *,
        name: str,
        queue: str,
        from_: str | None,
        to: str,
        count: int = 1,
        attempt: int | None = None,
        reason: str | None = None,
        counts: Counts | None = None,
    ) -> None:
        """A span event and a metric point for one state change (``counts``: add later)."""
        try:
            source = from_ or "none"
            if counts is not None:
                counts[("transition", name, queue, source, to)] += count
            else:
                self._transitions.add(count, _transition_attrs(name, queue, source, to))
            if span is not None:
                event = _event_attrs(source, to)
                if reason is not None:
                    event = {**event, "otelkit.job.reason": reason}
                span.add_event(f"otelkit.job.{to}", event)
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks a job
            report_internal_error("jobs.telemetry", exc)

    def add_counts(self, counts: Counts) -> None:
        """Add what a batch gathered: one ``add`` per attribute set (never raises)."""
        try:
            for key, n in counts.items():
                if key[0] == "consumed":
                    self._consumed.add(n, _base(key[1], key[2], "process"))
                else:
                    self._transitions.add(n, _transition_attrs(*key[1:]))
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks a job
            report_internal_error("jobs.telemetry", exc)

    def throttled(self, queue: str, reason: str) -> None:
        """A claim of ``queue`` was held back by a flow limit (never raises). No key value
        is an attribute: keys are tenants, unbounded in number."""
        try:
            self._throttled.add(
                1, {"messaging.destination.name": queue, "otelkit.job.throttle.reason": reason}
            )
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks a job
            report_internal_error("jobs.telemetry", exc)

    def held(self, span: Span, reason: str, waited: float) -> None:
        """An attempt starts after a flow limit held its queue back while it was ready:
        a span event with the limit and the seconds it was ready (never raises)."""
        try:
            span.add_event(
                "otelkit.job.held",
                {"otelkit.job.throttle.reason": reason, "otelkit.job.held.seconds": waited},
            )
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks a job
            report_internal_error("jobs.telemetry", exc)

    def timed_out(self, span: Span, job: Any, seconds: float) -> None:
        """An attempt ran past its timeout: a span event and a count (never raises)."""
        try:
            span.add_event(
                "otelkit.job.timeout",
                {"otelkit.job.timeout": seconds, "otelkit.job.attempt": job.attempt},
            )
            self._timeouts.add(1, _base(job.name, job.queue, "process"))
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks a job
            report_internal_error("jobs.telemetry", exc)

    def scheduled(self, *, name: str, queue: str) -> None:
        """The scheduler enqueued one period of a periodic job (never raises)."""
        try:
            self._scheduled.add(1, _base(name, queue, "send"))
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks a job
            report_internal_error("jobs.telemetry", exc)

    def pruned(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Jobs deleted by the pruner, by (queue, state) (never raises)."""
        try:
            for (queue, state), n in counts.items():
                self._pruned.add(
                    n, {"messaging.destination.name": queue, "otelkit.job.state": state}
                )
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks a job
            report_internal_error("jobs.telemetry", exc)

    def late_rejected(self, name: str, queue: str) -> None:
        """A timed-out attempt's late result was rejected (its span already ended)."""
        try:
            self._transitions.add(1, _transition_attrs(name, queue, "running", "lost"))
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks a job
            report_internal_error("jobs.telemetry", exc)

    def failed_attempt(self, span: Span, exc: BaseException) -> None:
        """Record an exception of the job function on its span."""
        kind = error_type(exc)
        span.record_exception(exc, attributes={"error.type": kind})
        span.set_attribute("error.type", kind)
        span.set_status(Status(StatusCode.ERROR, f"{kind}: {exc}"[:500]))

    def processed(self, *, name: str, queue: str, seconds: float, error: str | None) -> None:
        """Record the duration of one attempt."""
        self._duration.record(max(0.0, seconds), _base(name, queue, "process", error))

    # -- gauges ----------------------------------------------------------------------------
    def observe(self, snapshot: Callable[[], GaugeSnapshot | None]) -> None:
        """Observable gauges fed by ``snapshot`` (one query per collection, shared)."""

        def counts(options: CallbackOptions) -> Iterable[Observation]:
            taken = snapshot()
            if taken is None:
                return []
            return [
                Observation(n, {"messaging.destination.name": q, "otelkit.job.state": s})
                for (q, s), n in sorted(taken[0].items())
            ]

        def oldest(options: CallbackOptions) -> Iterable[Observation]:
            taken = snapshot()
            if taken is None:
                return []
            return [
                Observation(age, {"messaging.destination.name": q})
                for q, age in sorted(taken[1].items())
            ]

        self._meter.create_observable_gauge(
            "otelkit.job.count",
            callbacks=[counts],
            unit="{job}",
            description="Jobs in the store per queue and state.",
        )
        self._meter.create_observable_gauge(
            "otelkit.job.oldest_ready.age",
            callbacks=[oldest],
            unit="s",
            description="How long the oldest ready job of each queue has been waiting.",
        )


# Attribute sets are few (job names x queues x transitions): built once and shared. The
# SDK copies attributes it keeps, and nothing here mutates a cached dict.
@functools.lru_cache(maxsize=4096)
def _transition_attrs(name: str, queue: str, source: str, to: str) -> dict[str, Any]:
    return {
        "otelkit.job.from": source,
        "otelkit.job.to": to,
        "otelkit.job.name": name,
        "messaging.destination.name": queue,
    }


@functools.lru_cache(maxsize=256)
def _event_attrs(source: str, to: str) -> dict[str, Any]:
    return {"otelkit.job.from": source, "otelkit.job.to": to}


@functools.lru_cache(maxsize=4096)
def _base(name: str, queue: str, operation: str | None, error: str | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.destination.name": queue,
        "otelkit.job.name": name,
    }
    if operation is not None:
        attrs["messaging.operation.name"] = operation
    if error is not None:
        attrs["error.type"] = error
    return attrs
