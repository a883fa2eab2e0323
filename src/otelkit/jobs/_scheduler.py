"""The scheduler of periodic jobs: every worker runs it; the database makes each period
one job.

One transaction per tick: for each schedule, lock its row in ``otelkit_job_schedules``
(PostgreSQL ``SELECT … FOR UPDATE``; SQLite's write transaction is ``BEGIN IMMEDIATE``),
read the latest period already decided, insert a job for each due period with
``ON CONFLICT (schedule, period_start) DO NOTHING`` and move the row's ``last_period`` on.
The unique key alone guarantees one job per period, whatever the clocks or the number of
schedulers; the row lock only spares the losers the work (and the spans). No leader.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from opentelemetry.instrumentation.utils import suppress_instrumentation

from otelkit.jobs._definition import Definition
from otelkit.jobs._model import JobState, from_epoch
from otelkit.jobs._schedule import Schedule, iso
from otelkit.jobs._schema import db_now, dialect_insert, jobs, schedules
from otelkit.jobs._telemetry import JobTelemetry

__all__ = ["JobSchedule", "list_schedules", "run_schedules"]


@dataclass(frozen=True)
class JobSchedule:
    """A periodic job's schedule as stored (``otelkit jobs list`` prints them)."""

    name: str
    queue: str
    spec: str
    catch_up: str
    last_period: datetime | None
    """Start of the latest period decided (enqueued, or skipped by the catch-up policy)."""
    last_tick: datetime | None


def list_schedules(engine: sa.Engine) -> list[JobSchedule]:
    """Every stored schedule, by name."""
    with suppress_instrumentation(), engine.connect() as conn:
        rows = conn.execute(sa.select(schedules).order_by(_s.name)).all()
    return [
        JobSchedule(
            name=r.name,
            queue=r.queue,
            spec=r.spec,
            catch_up=r.catch_up,
            last_period=from_epoch(r.last_period),
            last_tick=from_epoch(r.updated_at),
        )
        for r in rows
    ]


_c = jobs.c
_s = schedules.c


def run_schedules(
    writer: sa.Engine,
    telemetry: JobTelemetry,
    definitions: Sequence[Definition],
    *,
    now: float | None = None,
) -> tuple[list[tuple[str, str]], float | None]:
    """Enqueue the due periods of these periodic jobs; ``[(queue, job id)]`` enqueued, and
    the seconds until the next period starts (database clock; ``now`` overrides it)."""
    enqueued: list[tuple[str, str]] = []
    sent: list[tuple[Definition, Any]] = []
    next_in: float | None = None
    with contextlib.ExitStack() as spans:
        # Entered first, so it is left last: the send spans (context managers that attach
        # a context) must be detached before it, or the suppression would outlive the call.
        spans.enter_context(suppress_instrumentation())
        with writer.begin() as conn:
            for d in definitions:
                schedule = d.schedule
                assert schedule is not None
                last, last_tick, at = _lock_schedule(conn, d, schedule, now)
                for period in schedule.due(last, at, last_tick):
                    span, carrier = spans.enter_context(
                        telemetry.send_span(
                            name=d.name, queue=d.queue, max_attempts=d.max_attempts, count=1
                        )
                    )
                    job_id = _enqueue_period(conn, d, period, span, carrier)
                    if job_id is not None:
                        enqueued.append((d.queue, job_id))
                        sent.append((d, span))
                _record_tick(conn, d, schedule, at)
                wait = schedule.next_start(at) - at
                next_in = wait if next_in is None else min(next_in, wait)
        for d, span in sent:  # committed
            telemetry.sent(span=span, name=d.name, queue=d.queue, count=1, error=None)
            telemetry.scheduled(name=d.name, queue=d.queue)
    return enqueued, next_in


def _lock_schedule(
    conn: sa.Connection, d: Definition, schedule: Schedule, now: float | None
) -> tuple[float | None, float | None, float]:
    """Create the schedule's row if new and lock it (PostgreSQL: ``FOR UPDATE``, so
    concurrent schedulers take turns); ``(last period, last tick, now)``."""
    dialect = conn.dialect.name
    conn.execute(
        dialect_insert(dialect, schedules)
        .values(
            name=d.name,
            queue=d.queue,
            spec=schedule.spec,
            catch_up=schedule.catch_up,
            last_period=None,
            updated_at=db_now() if now is None else now,
        )
        .on_conflict_do_nothing(index_elements=[_s.name])
    )
    pick = sa.select(_s.last_period, _s.updated_at, db_now()).where(_s.name == d.name)
    if dialect == "postgresql":
        pick = pick.with_for_update()
    last, last_tick, db_time = conn.execute(pick).one()
    at = float(db_time) if now is None else now
    return last, (None if last is None else last_tick), at


def _enqueue_period(
    conn: sa.Connection, d: Definition, period: float, span: Any, carrier: Any
) -> str | None:
    """Insert the job of one period unless another scheduler did (the unique key on
    ``(schedule, period_start)``); its id, or None for a duplicate."""
    job_id = uuid.uuid4().hex
    inserted = conn.execute(
        dialect_insert(conn.dialect.name, jobs)
        .values(
            id=job_id,
            name=d.name,
            queue=d.queue,
            status=JobState.QUEUED.value,
            data={"period": iso(period)},
            priority=0,
            attempt=0,
            max_attempts=d.max_attempts,
            lease_seconds=d.lease,
            run_after=period,
            created_at=db_now(),
            updated_at=db_now(),
            trace_context=carrier,
            errors=[],
            schedule=d.name,
            period_start=period,
        )
        .on_conflict_do_nothing(index_elements=[_c.schedule, _c.period_start])
        .returning(_c.id)
    ).first()
    if inserted is None:  # another scheduler enqueued this period first
        span.set_attribute("otelkit.job.schedule.duplicate", True)
        return None
    span.set_attribute("messaging.message.id", job_id)
    span.set_attribute("otelkit.job.schedule", d.name)
    span.add_event(
        "otelkit.job.scheduled",
        {"otelkit.job.schedule": d.name, "otelkit.job.period": iso(period)},
    )
    return job_id


def _record_tick(conn: sa.Connection, d: Definition, schedule: Schedule, at: float) -> None:
    """The latest period is decided and a scheduler ran at ``at`` (never moved back)."""
    latest = schedule.latest(at)
    conn.execute(
        sa.update(schedules)
        .where(_s.name == d.name)
        .values(
            last_period=sa.case(
                (sa.or_(_s.last_period.is_(None), _s.last_period < latest), latest),
                else_=_s.last_period,
            ),
            spec=schedule.spec,
            queue=d.queue,
            catch_up=schedule.catch_up,
            updated_at=sa.func.coalesce(sa.case((_s.updated_at < at, at), else_=_s.updated_at), at),
        )
    )
