"""One log record per failed attempt on the ``otelkit.jobs`` logger.

A WARNING while attempts are left, an ERROR when the job failed for good; emitted inside the
attempt's span, so the record carries its trace, with the exception and its traceback.
"""

from __future__ import annotations

import contextlib
import logging

from opentelemetry import trace
from opentelemetry.trace import Span

from otelkit._errors import report_internal_error
from otelkit.jobs._claim import Transition
from otelkit.jobs._model import Job, JobState

__all__ = ["log", "log_failure"]

log = logging.getLogger("otelkit.jobs")


def log_failure(
    job: Job,
    transition: Transition | None,
    span: Span | None,
    what: str,
    exc: BaseException | None,
    *,
    attempt: int | None = None,
) -> None:
    """Log that ``job``'s attempt ``what`` (e.g. "raised OSError: disk full"), and what next.

    ``attempt`` defaults to ``job.attempt``; ``span`` (the attempt's) may be None.
    """
    number = job.attempt if attempt is None else attempt
    retrying = transition is not None and transition.to is JobState.RETRYING
    if transition is None and number < job.attempt:
        retrying, outcome = True, f"taken over as attempt {job.attempt}"
    elif transition is not None and retrying:
        outcome = f"will be retried in {transition.delay:.1f} s"
    else:
        outcome = "no attempt is left: the job failed"
    try:
        with (
            trace.use_span(span, end_on_exit=False, record_exception=False)
            if span is not None
            else contextlib.nullcontext()
        ):
            log.log(
                logging.WARNING if retrying else logging.ERROR,
                "job %s (id %s) attempt %d of %d %s; %s",
                job.name,
                job.id,
                number,
                job.max_attempts,
                what,
                outcome,
                exc_info=exc,
                extra={
                    "otelkit.job.name": job.name,
                    "messaging.message.id": job.id,
                    "otelkit.job.attempt": number,
                },
            )
    except Exception as report:  # noqa: BLE001 - logging never breaks the worker
        report_internal_error("jobs.log", report)
