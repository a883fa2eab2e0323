"""Follow-up jobs (``job.then(fn, data)``): inserted in the transaction that records the
attempt's success, and only for attempts the fence accepted.

Each follow-up's id is derived from (job, attempt, position), so a completion retried after
a commit that had in fact landed does not insert it twice. Its ``send`` span is a child
of the attempt's ``process`` span: the follow-up's attempts link to this attempt's trace.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from opentelemetry import trace

from otelkit._clock import Clock
from otelkit.jobs._attempt import Attempt
from otelkit.jobs._enqueue import Item, insert, prepare
from otelkit.jobs._model import JobState
from otelkit.jobs._schema import jobs
from otelkit.jobs._telemetry import JobTelemetry

__all__ = ["Followups", "followup_id"]


def followup_id(job_id: str, attempt: int, index: int) -> str:
    """The id of the ``index``-th follow-up of this attempt."""
    return hashlib.sha256(f"{job_id}\0{attempt}\0{index}".encode()).hexdigest()[:32]


class Followups:
    """Inserts the follow-ups of accepted successful attempts on the completing connection."""

    def __init__(self, telemetry: JobTelemetry, clock: Clock) -> None:
        self._telemetry = telemetry
        self._clock = clock

    def insert(self, conn: sa.Connection, accepted: Sequence[Attempt]) -> list[str]:
        """Insert them (no commit: the caller's transaction records the successes); the
        queues that got jobs."""
        wanted = [
            (a, i, f)
            for a in accepted
            if a.transition is not None and a.transition.to is JobState.SUCCEEDED
            for i, f in enumerate(a.job.followups)
        ]
        if not wanted:
            return []
        ids = [followup_id(a.job.id, a.job.attempt, i) for a, i, _ in wanted]
        present = set(conn.execute(sa.select(jobs.c.id).where(jobs.c.id.in_(ids))).scalars())
        queues = []
        for (attempt, _, (fn, data, options)), job_id in zip(wanted, ids, strict=True):
            if job_id not in present:
                self._one(conn, attempt, fn, data, options, job_id)
                queues.append(fn.queue)
        return queues

    def _one(
        self, conn: sa.Connection, attempt: Attempt, fn: Any, data: Any, options: Any, job_id: str
    ) -> None:
        d = fn.definition
        batch = prepare("job.then", d, [Item(data, id=job_id)], options, now=self._clock.time())
        tel = self._telemetry
        with (
            trace.use_span(attempt.span, end_on_exit=False),
            tel.send_span(name=d.name, queue=d.queue, max_attempts=d.max_attempts, count=1) as (
                span,
                carrier,
            ),
        ):
            span.set_attribute("messaging.message.id", job_id)
            insert(conn, batch, carrier)
            tel.sent(span=span, name=d.name, queue=d.queue, count=1, error=None)
