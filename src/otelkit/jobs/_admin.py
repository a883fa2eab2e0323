"""Read-side queries and operator actions (list, show, retry, cancel, purge, gauges)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from opentelemetry.instrumentation.utils import suppress_instrumentation

from otelkit.jobs._model import Job, JobState, from_epoch, job_from_row
from otelkit.jobs._schema import RUNNING_SQL, WAITING_SQL, db_now, history, jobs
from otelkit.jobs._telemetry import GaugeSnapshot

__all__ = ["JobTransition", "gauges", "get", "list_jobs", "operate", "purge", "transitions"]

_c = jobs.c
FINAL_STATES = tuple(s for s in JobState if s.is_final)


@dataclass(frozen=True)
class JobTransition:
    """One row of a job's history: a state change (``lost``: an attempt's result rejected)."""

    from_state: str | None
    to_state: str
    at: datetime | None
    attempt: int
    worker: str | None
    error: str | None


def gauges(engine: sa.Engine) -> GaugeSnapshot:
    """Jobs per (queue, state) and the age of the oldest ready job per queue: one query."""
    now = db_now()
    ready_since = sa.case(
        (sa.and_(sa.text(WAITING_SQL), _c.run_after <= now), _c.run_after),
        (sa.and_(sa.text(RUNNING_SQL), _c.lease_expires <= now), _c.lease_expires),
    )
    stmt = sa.select(_c.queue, _c.status, sa.func.count(), sa.func.min(ready_since), now).group_by(
        _c.queue, _c.status
    )
    counts: dict[tuple[str, str], int] = {}
    oldest: dict[str, float] = {}
    with suppress_instrumentation(), engine.connect() as conn:
        for queue, status, count, since, db_time in conn.execute(stmt):
            counts[(queue, status)] = count
            oldest.setdefault(queue, 0.0)
            if since is not None:
                oldest[queue] = max(oldest[queue], db_time - since)
    return counts, oldest


def get(engine: sa.Engine, job_id: str) -> Job | None:
    """The job with this id, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(*jobs.c).where(_c.id == job_id)).first()
    return None if row is None else job_from_row(row)


def list_jobs(
    engine: sa.Engine,
    *,
    states: Iterable[JobState | str] | None,
    queue: str | None,
    name: str | None,
    limit: int,
) -> list[Job]:
    """Jobs, most recently updated first, optionally filtered."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1, got {limit!r}")
    stmt = sa.select(*jobs.c).order_by(_c.updated_at.desc(), _c.id).limit(limit)
    if states is not None:
        stmt = stmt.where(_c.status.in_([_state(s).value for s in states]))
    if queue is not None:
        stmt = stmt.where(_c.queue == queue)
    if name is not None:
        stmt = stmt.where(_c.name == name)
    with engine.connect() as conn:
        return [job_from_row(row) for row in conn.execute(stmt)]


def transitions(engine: sa.Engine, job_id: str) -> list[JobTransition]:
    """A job's state changes, oldest first."""
    h = history.c
    stmt = sa.select(history).where(h.job_id == job_id).order_by(h.seq)
    with engine.connect() as conn:
        return [
            JobTransition(
                r.from_status, r.to_status, from_epoch(r.at), r.attempt, r.worker, r.error
            )
            for r in conn.execute(stmt)
        ]


def operate(writer: sa.Engine, job_id: str, sources: Sequence[str], **values: Any) -> bool:
    """Move one job from one of ``sources`` to new values (an operator action)."""
    stmt = (
        sa.update(jobs)
        .where(_c.id == job_id, _c.status.in_(sources))
        .values(lease_owner=None, lease_expires=None, updated_at=db_now(), **values)
    )
    with writer.begin() as conn:
        return conn.execute(stmt).rowcount == 1


def purge(writer: sa.Engine, *, older_than: timedelta, states: Iterable[JobState | str]) -> int:
    """Delete final jobs (and their history) last updated more than ``older_than`` ago."""
    if not isinstance(older_than, timedelta):
        raise TypeError(f"purge: older_than must be a timedelta, got {older_than!r}")
    chosen = [_state(s) for s in states]
    if not chosen or not all(s.is_final for s in chosen):
        raise ValueError(
            f"purge: states must be final states (succeeded, failed, cancelled), "
            f"got {[s.value for s in chosen]}"
        )
    cutoff = db_now() - older_than.total_seconds()
    doomed = sa.select(_c.id).where(
        _c.status.in_([s.value for s in chosen]), _c.updated_at < cutoff
    )
    with writer.begin() as conn:
        conn.execute(sa.delete(history).where(history.c.job_id.in_(doomed)))
        deleted: int = conn.execute(sa.delete(jobs).where(_c.id.in_(doomed))).rowcount
        return deleted


def _state(value: JobState | str) -> JobState:
    try:
        return JobState(value)
    except ValueError:
        accepted = ", ".join(s.value for s in JobState)
        raise ValueError(f"unknown job state {value!r} (accepted: {accepted})") from None
