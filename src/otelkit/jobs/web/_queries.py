"""The dashboard's read queries: queue overview, keyset job pages, follow-ups, schedules.

Every query costs in proportion to what a page shows, not to the size of the table: job
pages walk the ``(status, updated_at)`` index one state at a time (a ``UNION ALL`` of
per-state index scans merged by the database) from a keyset cursor, never ``OFFSET``; the
recent-activity figures read a bounded tail of the transition history.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from opentelemetry.instrumentation.utils import suppress_instrumentation

from otelkit.jobs import _admin
from otelkit.jobs._followup import followup_id
from otelkit.jobs._model import Job, JobState, job_from_row
from otelkit.jobs._queues import paused_queues
from otelkit.jobs._schedule import Schedule, make_schedule
from otelkit.jobs._scheduler import JobSchedule, list_schedules
from otelkit.jobs._schema import db_now, history, jobs, queues

__all__ = [
    "ACTIVITY_MINUTES",
    "COLUMNS",
    "JobFilter",
    "JobPage",
    "QueueRow",
    "ScheduleRow",
    "bulk_ids",
    "count_matching",
    "decode_cursor",
    "encode_cursor",
    "followups",
    "job_page",
    "queue_overview",
    "schedule_rows",
]

_c = jobs.c
_h = history.c
ACTIVITY_MINUTES = 15
"""The window of the queues page's "started" and "failed" figures."""
_ACTIVITY_ROWS = 20_000
"""Transitions read at most for those figures (the newest ones): a bounded cost."""
_FOLLOWUP_PROBE = 100


@dataclass(frozen=True)
class QueueRow:
    """One queue on the queues page."""

    name: str
    counts: dict[str, int]
    oldest_ready_seconds: float
    started: int
    failed: int
    paused: bool
    activity_capped: bool = False
    """True when more transitions happened in the window than were read (figures are lower
    bounds)."""

    @property
    def total(self) -> int:
        """Jobs of this queue in any state."""
        return sum(self.counts.values())


COLUMNS = ("ready", "scheduled", "running", "retrying", "failed", "succeeded", "cancelled")
"""The queues page's count columns: ``ready`` and ``scheduled`` split ``queued`` jobs by
whether their ``run_after`` has come."""


def queue_overview(engine: sa.Engine) -> list[QueueRow]:
    """Every queue that has jobs or a setting (a paused queue without jobs is listed)."""
    # FLOW CONTROL: once otelkit.jobs has per-queue limits (concurrency, rate), read them
    # here into QueueRow and fill the "Limits" column marked in _queues_table.html.
    counts, oldest = _admin.gauges(engine)
    later = (
        sa.select(_c.queue, sa.func.count())
        .where(sa.text("status = 'queued'"), _c.run_after > db_now())
        .group_by(_c.queue)
    )
    started, failed, capped = _activity(engine)
    with suppress_instrumentation():
        paused = set(paused_queues(engine))
        with engine.connect() as conn:
            configured = set(conn.execute(sa.select(queues.c.queue)).scalars())
            scheduled = {q: int(n) for q, n in conn.execute(later)}
    names = sorted({q for q, _ in counts} | configured)
    rows = []
    for name in names:
        by_state = {s.value: counts.get((name, s.value), 0) for s in JobState}
        by_state["scheduled"] = scheduled.get(name, 0)
        by_state["ready"] = by_state.pop("queued") - by_state["scheduled"]
        rows.append(
            QueueRow(
                name=name,
                counts={column: by_state[column] for column in COLUMNS},
                oldest_ready_seconds=oldest.get(name, 0.0),
                started=started.get(name, 0),
                failed=failed.get(name, 0),
                paused=name in paused,
                activity_capped=capped,
            )
        )
    return rows


def _activity(engine: sa.Engine) -> tuple[dict[str, int], dict[str, int], bool]:
    """Attempts started and failed per queue in the last ``ACTIVITY_MINUTES``, read from the
    newest ``_ACTIVITY_ROWS`` transitions (by sequence: the primary key, so no scan)."""
    cutoff = db_now() - ACTIVITY_MINUTES * 60.0
    tail = (
        sa.select(_h.job_id, _h.to_status, _h.at)
        .order_by(_h.seq.desc())
        .limit(_ACTIVITY_ROWS)
        .subquery()
    )
    stmt = (
        sa.select(_c.queue, tail.c.to_status, sa.func.count())
        .select_from(tail.join(jobs, jobs.c.id == tail.c.job_id))
        .where(tail.c.at >= cutoff, tail.c.to_status.in_(("running", "retrying", "failed")))
        .group_by(_c.queue, tail.c.to_status)
    )
    read = sa.select(sa.func.count(), sa.func.min(tail.c.at)).select_from(tail)
    started: dict[str, int] = {}
    failed: dict[str, int] = {}
    with suppress_instrumentation(), engine.connect() as conn:
        for queue, status, count in conn.execute(stmt):
            target = started if status == "running" else failed
            target[queue] = target.get(queue, 0) + count
        rows, earliest = conn.execute(read).one()
        now = conn.execute(sa.select(db_now())).scalar_one()
    capped = (
        rows >= _ACTIVITY_ROWS and earliest is not None and earliest > now - 60 * ACTIVITY_MINUTES
    )
    return started, failed, capped


@dataclass(frozen=True)
class JobFilter:
    """What the jobs page selects: states (empty: all), queue, name and error text."""

    states: tuple[JobState, ...] = ()
    queue: str = ""
    name: str = ""
    error: str = ""

    @property
    def chosen_states(self) -> tuple[JobState, ...]:
        """The states to read: the chosen ones, or all."""
        return self.states or tuple(JobState)

    def where(self, *, only: Iterable[JobState] | None = None) -> list[sa.ColumnElement[bool]]:
        """The conditions other than the state."""
        conditions: list[sa.ColumnElement[bool]] = []
        if self.queue:
            conditions.append(_c.queue == self.queue)
        if self.name:
            conditions.append(_c.name == self.name)
        if self.error:
            conditions.append(_c.last_error.icontains(self.error, autoescape=True))
        return conditions


@dataclass(frozen=True)
class JobPage:
    """One page of jobs, newest change first, and the cursor of the next page (if any)."""

    jobs: list[Job]
    next_cursor: str | None
    filter: JobFilter = field(default_factory=JobFilter)


def encode_cursor(updated_at: float, job_id: str) -> str:
    """An opaque keyset cursor: the last row's ``(updated_at, id)``."""
    raw = f"{updated_at!r}\n{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The ``(updated_at, id)`` of a cursor; ``ValueError`` for one we did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, job_id = base64.urlsafe_b64decode(padded.encode()).decode().split("\n", 1)
        return float(at), job_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid page cursor {cursor!r}") from exc


def _select_page(flt: JobFilter, cursor: tuple[float, str] | None, limit: int) -> sa.Select[Any]:
    """Ids and change times of one page: per state, an index range scan from the cursor
    with ``LIMIT``, then the merge of those few rows (so no sort of the whole table)."""
    branches = []
    for state in flt.chosen_states:
        stmt = sa.select(_c.id, _c.updated_at).where(_c.status == state.value, *flt.where())
        if cursor is not None:
            at, job_id = cursor
            stmt = stmt.where(_c.updated_at <= at, sa.or_(_c.updated_at < at, _c.id < job_id))
        ordered = stmt.order_by(_c.updated_at.desc(), _c.id.desc()).limit(limit).subquery()
        branches.append(sa.select(ordered.c.id, ordered.c.updated_at))
    merged = (sa.union_all(*branches) if len(branches) > 1 else branches[0]).subquery()
    return (
        sa.select(merged.c.id, merged.c.updated_at)
        .order_by(merged.c.updated_at.desc(), merged.c.id.desc())
        .limit(limit)
    )


def job_page(
    engine: sa.Engine, flt: JobFilter, *, cursor: str | None = None, limit: int = 50
) -> JobPage:
    """Up to ``limit`` jobs matching ``flt`` after ``cursor`` (newest change first)."""
    after = decode_cursor(cursor) if cursor else None
    with suppress_instrumentation(), engine.connect() as conn:
        keys = [(str(r[0]), float(r[1])) for r in conn.execute(_select_page(flt, after, limit + 1))]
        shown = [job_id for job_id, _ in keys[:limit]]
        rows = conn.execute(sa.select(*jobs.c).where(_c.id.in_(shown))).all() if shown else []
    by_id = {job.id: job for job in map(job_from_row, rows)}
    found = [by_id[job_id] for job_id in shown if job_id in by_id]
    next_cursor = None
    if len(keys) > limit:
        last_id, last_at = keys[limit - 1]
        next_cursor = encode_cursor(last_at, last_id)
    return JobPage(found, next_cursor, flt)


def count_matching(
    engine: sa.Engine, flt: JobFilter, states: Sequence[JobState], *, up_to: float | None
) -> int:
    """How many jobs match ``flt`` in ``states`` (changed at or before ``up_to``)."""
    chosen = [s.value for s in flt.chosen_states if s in states]
    if not chosen:
        return 0
    stmt = sa.select(sa.func.count()).where(_c.status.in_(chosen), *flt.where())
    if up_to is not None:
        stmt = stmt.where(_c.updated_at <= up_to)
    with suppress_instrumentation(), engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def bulk_ids(
    engine: sa.Engine, flt: JobFilter, states: Sequence[JobState], *, up_to: float, limit: int
) -> list[str]:
    """Ids of up to ``limit`` jobs a bulk action applies to (newest change first)."""
    chosen = [s.value for s in flt.chosen_states if s in states]
    if not chosen:
        return []
    stmt = (
        sa.select(_c.id)
        .where(_c.status.in_(chosen), _c.updated_at <= up_to, *flt.where())
        .order_by(_c.updated_at.desc(), _c.id.desc())
        .limit(limit)
    )
    with suppress_instrumentation(), engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def db_time(engine: sa.Engine) -> float:
    """The database's clock now (epoch seconds)."""
    with suppress_instrumentation(), engine.connect() as conn:
        return float(conn.execute(sa.select(db_now())).scalar_one())


def followups(engine: sa.Engine, job: Job) -> list[Job]:
    """The follow-up jobs a job's successful attempt enqueued (``job.then``): their ids
    derive from (job, attempt, position), so they are found by primary key."""
    if job.state is not JobState.SUCCEEDED or job.attempt < 1:
        return []
    found: list[Job] = []
    start = 0
    with suppress_instrumentation(), engine.connect() as conn:
        while True:
            ids = [
                followup_id(job.id, job.attempt, i) for i in range(start, start + _FOLLOWUP_PROBE)
            ]
            rows = [job_from_row(r) for r in conn.execute(sa.select(*jobs.c).where(_c.id.in_(ids)))]
            order = {job_id: i for i, job_id in enumerate(ids)}
            found += sorted(rows, key=lambda j: order[j.id])
            if len(rows) < _FOLLOWUP_PROBE:
                return found
            start += _FOLLOWUP_PROBE


@dataclass(frozen=True)
class ScheduleRow:
    """A periodic job's schedule with its next period start (None if its spec is unreadable)."""

    schedule: JobSchedule
    next_run: datetime | None


_CRON_SPEC = re.compile(r"^cron '(?P<cron>[^']+)' (?P<tz>\S+)$")
_EVERY_SPEC = re.compile(r"^every (?P<seconds>[0-9.e+-]+)s$")


def parse_spec(spec: str, catch_up: str) -> Schedule | None:
    """The :class:`Schedule` a stored spec (``Schedule.spec``) describes, or None."""
    try:
        if match := _CRON_SPEC.match(spec):
            return make_schedule(cron=match["cron"], every=None, tz=match["tz"], catch_up=catch_up)
        if match := _EVERY_SPEC.match(spec):
            return make_schedule(
                cron=None, every=float(match["seconds"]), tz="UTC", catch_up=catch_up
            )
    except ValueError:
        return None
    return None


def schedule_rows(engine: sa.Engine) -> list[ScheduleRow]:
    """Every stored schedule with its next run (after the database's clock now)."""
    now = db_time(engine)
    rows = []
    for stored in list_schedules(engine):
        schedule = parse_spec(stored.spec, stored.catch_up)
        following = None if schedule is None else schedule.next_start(now)
        rows.append(
            ScheduleRow(
                stored,
                None if following is None else datetime.fromtimestamp(following, timezone.utc),
            )
        )
    return rows
