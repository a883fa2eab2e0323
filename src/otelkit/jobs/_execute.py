"""Running one claimed attempt: span, lease, the user's function, and the resulting transition.

Shared by ``fn.run(job_id)`` and the worker. ``begin`` opens the CONSUMER span and holds the
lease, ``invoke_sync``/``invoke_async`` call the function and decide the transition, and the
store applies transitions (fenced, possibly many in one transaction) and then calls
``settle`` to close the span and record metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import inspect
import random
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace

from otelkit._clock import Clock
from otelkit._errors import report_internal_error
from otelkit.errors import OptionTypeError
from otelkit.jobs._attempt import (
    Attempt,
    limited,
    run_awaitable,
    timeout_error,
    trace_id_hex,
)
from otelkit.jobs._cancel import CancelProbe, Check, JobCancelledError, cancellable
from otelkit.jobs._claim import CANCELLED_REASON, LOST, Transition
from otelkit.jobs._definition import Definition
from otelkit.jobs._enqueue import make_options
from otelkit.jobs._failurelog import log_failure
from otelkit.jobs._lease import LeaseKeeper
from otelkit.jobs._model import (
    FollowupScope,
    Job,
    JobError,
    JobState,
    check_json,
    job_from_mapping,
)
from otelkit.jobs._telemetry import Counts, JobTelemetry, error_type, format_error

__all__ = ["Runner", "prepare_followup"]

_INTERRUPTS = (KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit)


class Runner:
    """Turns claimed rows into attempts and attempts into transitions."""

    def __init__(
        self,
        *,
        registry: dict[str, Definition],
        telemetry: JobTelemetry,
        keeper: LeaseKeeper,
        clock: Clock,
        rng: random.Random,
        max_errors: int,
        still_ours: Check | None = None,
    ) -> None:
        self._still_ours = still_ours
        self._registry = registry
        self._telemetry = telemetry
        self._keeper = keeper
        self._clock = clock
        self._rng = rng
        self._max_errors = max_errors

    def begin(self, m: Mapping[Any, Any], owner: str, counts: Counts | None = None) -> Attempt:
        """Open the span of a just-claimed row (a mapping) and start renewing its lease."""
        job = job_from_mapping(m)
        tel = self._telemetry
        span = tel.start_process(
            job_id=job.id,
            name=job.name,
            queue=job.queue,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            carrier=m["trace_context"],
            worker=owner,
        )
        claimed_from = m["claimed_from"] or JobState.QUEUED.value
        probe = None
        if self._still_ours is not None:
            probe = CancelProbe(self._still_ours, self._clock, job.id, job.attempt, owner)
        job = dataclasses.replace(
            job, _cancel_probe=probe, _then=FollowupScope(prepare=prepare_followup)
        )
        wait = m["updated_at"] - m["run_after"]
        tel.consumed(name=job.name, queue=job.queue, queue_wait=wait, counts=counts)
        attempt = Attempt(
            job=job,
            claimed_from=claimed_from,
            definition=self._registry.get(job.name),
            span=span,
            lease=self._keeper.hold(owner, job.id, job.attempt, m["lease_seconds"]),
            owner=owner,
            errors=[e.to_json() for e in job.errors],
            probe=probe,
        )
        reason = None
        if claimed_from == JobState.RUNNING.value:
            reason = "lease of the previous attempt expired"
            lost = "was lost: its worker's lease expired"
            log_failure(job, None, span, lost, None, attempt=job.attempt - 1)
            self._add_error(
                attempt,
                JobError(
                    attempt=job.attempt - 1,
                    type="otelkit.jobs.LeaseExpired",
                    message=f"attempt {job.attempt - 1} was lost: its worker's lease expired",
                    traceback="",
                    at=self._clock.time(),
                ),
            )
        tel.transition(
            span,
            name=job.name,
            queue=job.queue,
            from_=claimed_from,
            to=JobState.RUNNING.value,
            attempt=job.attempt,
            reason=reason,
            counts=counts,
        )
        return attempt

    # -- calling the function --------------------------------------------------------------
    def invoke_sync(self, attempt: Attempt) -> None:
        """Run a sync (or, in a fresh event loop, async) job function; set the transition."""
        definition = attempt.definition
        if definition is None:
            self._unknown(attempt)
            return
        with self._outcome(attempt) as result:
            value = definition.fn(attempt.job)
            if inspect.isawaitable(value):
                value = asyncio.run(run_awaitable(value))
            result.append(value)

    async def invoke_async(self, attempt: Attempt, *, timeout: float | None = None) -> None:
        """Await an async job function (in the worker's event loop); set the transition.

        ``timeout`` (or the function's own): past it, the function is cancelled and the
        attempt fails with ``TimeoutError``.
        """
        definition = attempt.definition
        if definition is None:
            self._unknown(attempt)
            return
        if definition.timeout is not None:
            timeout = definition.timeout
        with self._outcome(attempt) as result:
            value = definition.fn(attempt.job)
            if inspect.isawaitable(value):
                if timeout is not None:
                    value = limited(attempt, value, timeout)
                if attempt.probe is not None:
                    value = cancellable(value, attempt.probe)
                value = await value
            result.append(value)

    @contextlib.contextmanager
    def _outcome(self, attempt: Attempt) -> Iterator[list[Any]]:
        """The call of the function, shared by the sync and async paths: inside the attempt's
        span; interrupts release the job and re-raise, failures are recorded (not raised),
        and the value appended to the yielded list is the success's result."""
        self._start(attempt)
        result: list[Any] = []
        try:
            with trace.use_span(attempt.span, end_on_exit=False, record_exception=False):
                yield result
        except _INTERRUPTS as exc:
            self._release(attempt, exc)
            raise
        except JobCancelledError:
            self._stop_timer(attempt)
            self.release(attempt, "cancelled")  # rejected by the fence: recorded as lost
        except Exception as exc:  # noqa: BLE001 - the job's failure is recorded, not propagated
            self._failed(attempt, exc)
        else:
            self._succeeded(attempt, result[0] if result else None)
        finally:
            _close_followups(attempt.job)

    def _start(self, attempt: Attempt) -> None:
        attempt.started = True
        attempt.began = self._clock.monotonic()

    def _stop_timer(self, attempt: Attempt) -> None:
        if attempt.started and attempt.duration is None:
            attempt.duration = self._clock.monotonic() - attempt.began

    def _succeeded(self, attempt: Attempt, value: Any) -> None:
        self._stop_timer(attempt)
        recorded, result = attempt.job.recorded_result
        if not recorded and value is not None:
            try:
                check_json(value, option="the job function's return value")
            except TypeError as exc:
                self._failed(attempt, exc)
                return
            recorded, result = True, value
        attempt.transition = Transition(
            job_id=attempt.job.id,
            attempt=attempt.job.attempt,
            to=JobState.SUCCEEDED,
            has_result=recorded,
            result=result,
            errors=attempt.errors if attempt.errors_changed else None,
        )

    def timed_out(self, attempt: Attempt, seconds: float) -> Attempt:
        """A sync attempt ran past its timeout: abandon it (its thread's late result will
        not stand), stop renewing its lease, and return the copy that records it as failed
        with ``TimeoutError`` (retried per the job's policy), to be committed."""
        timed_out = copy.copy(attempt)
        timed_out.errors = list(attempt.errors)
        attempt.abandoned = True
        if timed_out.lease is not None:
            self._keeper.drop(timed_out.lease)
        self._telemetry.timed_out(timed_out.span, timed_out.job, seconds)
        self._failed(timed_out, timeout_error(timed_out, seconds))
        return timed_out

    def _failed(self, attempt: Attempt, exc: BaseException) -> None:
        if attempt.abandoned:  # timed out: the recorded outcome stands
            attempt.transition = Transition(attempt.job.id, attempt.job.attempt, JobState.FAILED)
            return
        self._stop_timer(attempt)
        if attempt.expired_after is not None:  # an async function cancelled by its timeout
            self._telemetry.timed_out(attempt.span, attempt.job, attempt.expired_after)
        kind, message, text = format_error(exc)
        attempt.error = kind
        self._telemetry.failed_attempt(attempt.span, exc)
        trace_id = trace_id_hex(attempt.span)
        self._fail_with(
            attempt,
            JobError(attempt.job.attempt, kind, message, text, self._clock.time(), trace_id),
        )
        log_failure(attempt.job, attempt.transition, attempt.span, f"raised {kind}: {message}", exc)

    def _fail_with(self, attempt: Attempt, error: JobError) -> None:
        job = attempt.job
        self._add_error(attempt, error)
        final = job.attempt >= job.max_attempts or attempt.definition is None
        delay = 0.0
        if not final and attempt.definition is not None:
            delay = attempt.definition.backoff.delay(job.attempt, self._rng)
        attempt.transition = Transition(
            job_id=job.id,
            attempt=job.attempt,
            to=JobState.FAILED if final else JobState.RETRYING,
            errors=attempt.errors,
            last_error=f"{error.type}: {error.message}"[:2000],
            delay=delay,
        )

    def _unknown(self, attempt: Attempt) -> None:
        known = ", ".join(sorted(self._registry)) or "none"
        error = JobError(
            attempt=attempt.job.attempt,
            type="otelkit.jobs.UnknownJobError",
            message=f"no function named {attempt.job.name!r} is registered in this worker "
            f"(registered: {known})",
            traceback="",
            at=self._clock.time(),
            trace_id=trace_id_hex(attempt.span),
        )
        attempt.error = error.type
        attempt.span.set_attribute("error.type", error.type)
        attempt.span.set_status(trace.Status(trace.StatusCode.ERROR, error.message))
        self._add_error(attempt, error)
        attempt.transition = Transition(
            job_id=attempt.job.id,
            attempt=attempt.job.attempt,
            to=JobState.FAILED,
            errors=attempt.errors,
            last_error=f"{error.type}: {error.message}",
        )
        log_failure(
            attempt.job, attempt.transition, attempt.span, f"could not start: {error.message}", None
        )

    def release(self, attempt: Attempt, reason: str) -> None:
        """Give the job back (interrupt, shutdown): ``retrying``, ready at once."""
        self._stop_timer(attempt)
        attempt.transition = Transition(
            job_id=attempt.job.id,
            attempt=attempt.job.attempt,
            to=JobState.RETRYING,
            errors=attempt.errors if attempt.errors_changed else None,
            last_error=f"released: {reason}",
            unstarted=not attempt.started,
        )

    def _release(self, attempt: Attempt, exc: BaseException) -> None:
        attempt.error = error_type(exc)
        attempt.span.set_attribute("error.type", attempt.error)
        self.release(attempt, attempt.error)

    def lease_expired(self, job: Job) -> Transition:
        """The transition failing a job whose last allowed attempt lost its lease."""
        error = JobError(
            attempt=job.attempt,
            type="otelkit.jobs.LeaseExpired",
            message=f"attempt {job.attempt} (the last allowed) was lost: its lease expired",
            traceback="",
            at=self._clock.time(),
        )
        errors = [e.to_json() for e in job.errors] + [error.to_json()]
        final = Transition(job_id=job.id, attempt=job.attempt, to=JobState.FAILED)
        log_failure(job, final, None, "was lost: its lease expired", None)
        self._telemetry.transition(
            None, name=job.name, queue=job.queue, from_="running", to="failed"
        )
        return Transition(
            job_id=job.id,
            attempt=job.attempt,
            to=JobState.FAILED,
            errors=errors[-self._max_errors :],
            last_error=f"{error.type}: {error.message}",
        )

    def _add_error(self, attempt: Attempt, error: JobError) -> None:
        attempt.errors.append(error.to_json())
        del attempt.errors[: -self._max_errors]
        attempt.errors_changed = True

    def abandon(self, attempt: Attempt) -> None:
        """Stop renewing and close the span when the outcome could not be stored.

        The lease then expires and another worker takes the job over (at-least-once).
        """
        if attempt.settled:
            return
        attempt.settled = True
        try:
            if attempt.lease is not None:
                self._keeper.drop(attempt.lease)
            attempt.span.set_attribute("error.type", "otelkit.jobs.CompletionFailed")
            attempt.span.end()
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the worker
            report_internal_error("jobs.abandon", exc)

    # -- after the transition was applied ----------------------------------------------------
    def settle(self, attempt: Attempt, *, applied: bool, counts: Counts | None = None) -> None:
        """Close the attempt's span and record its metrics (never raises)."""
        tel = self._telemetry
        job = attempt.job
        transition = attempt.transition
        attempt.applied = applied
        attempt.settled = True
        try:
            if attempt.lease is not None:
                self._keeper.drop(attempt.lease)
            to = transition.to.value if transition is not None and applied else LOST
            reason = None
            if to == LOST and attempt.cancelled:
                reason = CANCELLED_REASON
            elif to == LOST:
                reason = "lease lost: another worker owns this job now; result discarded"
            elif transition is not None and transition.last_error and to != "succeeded":
                reason = transition.last_error[:500]
            tel.transition(
                attempt.span,
                name=job.name,
                queue=job.queue,
                from_=JobState.RUNNING.value,
                to=to,
                attempt=job.attempt,
                reason=reason,
                counts=counts,
            )
            if attempt.duration is not None:
                tel.processed(
                    name=job.name, queue=job.queue, seconds=attempt.duration, error=attempt.error
                )
            attempt.span.end()
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the worker
            report_internal_error("jobs.settle", exc)


def _close_followups(job: Job) -> None:
    """The function returned (or raised): a ``job.then`` from now on could never be
    committed with this attempt, so it raises instead of being silently dropped."""
    if job._then is not None:
        job._then.open = False


def prepare_followup(fn: Any, data: Any, run_after: Any, priority: int) -> tuple[Any, Any, Any]:
    """One ``job.then(fn, data, ...)``, checked: ``(fn, data, options)`` as recorded."""
    if not isinstance(getattr(fn, "definition", None), Definition):
        raise OptionTypeError(
            f"job.then: fn must be a job function (decorated with @store.job), "
            f"got {type(fn).__name__}"
        )
    check_json(data, option="job.then: data")
    options = make_options("job.then", run_after=run_after, priority=priority, unique_for=None)
    return (fn, data, options)
