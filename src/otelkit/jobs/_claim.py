"""The SQL of a job's life: claim (per dialect), fenced transitions, lease renewal.

Every statement after the claim is fenced: it only touches a row that is still
``running`` under this worker's lease owner *and* attempt number, and the caller checks
which rows it touched (``RETURNING id``). A worker that lost its lease cannot overwrite the
new owner's row; its attempt is recorded as lost instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from otelkit.jobs._model import JobState
from otelkit.jobs._schema import (
    JSON,
    LIMITED_SQL,
    RUNNING_SQL,
    WAITING_SQL,
    db_now,
    history,
    jobs,
    queues,
)

__all__ = [
    "CANCELLED_REASON",
    "LOST",
    "Transition",
    "cancelled_during",
    "claim_batch",
    "claim_by_id",
    "claim_expired",
    "claim_values",
    "exhausted_expired",
    "finish",
    "next_due",
    "record_lost",
    "renew",
]

LOST = "lost"
"""Pseudo-state in the history table: an attempt whose lease was lost (result rejected)."""
CANCELLED_REASON = "cancelled: result discarded"
"""The reason of a ``lost`` row (and span event) when the job was cancelled during the attempt."""

_c = jobs.c
_WAITING = (JobState.QUEUED.value, JobState.RETRYING.value)
_RUNNING = JobState.RUNNING.value


@dataclass(frozen=True)
class Transition:
    """Where one attempt of one job goes when it ends (or is released)."""

    job_id: str
    attempt: int
    to: JobState
    has_result: bool = False
    result: Any = None
    errors: list[dict[str, Any]] | None = None
    last_error: str | None = None
    delay: float = 0.0
    """For ``retrying``: seconds after the database's now before the job is ready again."""
    unstarted: bool = False
    """Released before the function started: the attempt is given back."""

    @property
    def plain(self) -> bool:
        return (
            self.to is JobState.SUCCEEDED
            and not self.has_result
            and self.errors is None
            and self.last_error is None
        )


def claim_values(owner: Any) -> dict[str, Any]:
    """The SET clause that turns a waiting (or expired running) row into this owner's attempt."""
    now = db_now()
    # SET expressions read the row as it was before the UPDATE (both dialects).
    return {
        "status": _RUNNING,
        "claimed_from": _c.status,
        "attempt": _c.attempt + 1,
        "lease_owner": owner,
        "lease_expires": now + _c.lease_seconds,
        # when this attempt became ready: the retry time, or the expiry of a lost lease
        "run_after": sa.case((_c.status == _RUNNING, _c.lease_expires), else_=_c.run_after),
        "updated_at": now,
    }


# Statements are built once per dialect with bound parameters (hot path: no rebuilding).
_cache: dict[tuple[str, str], Any] = {}


def _cached(conn: sa.Connection, kind: str, build: Callable[[bool], Any]) -> Any:
    key = (conn.dialect.name, kind)
    stmt = _cache.get(key)
    if stmt is None:
        stmt = _cache[key] = build(key[0] == "postgresql")
    return stmt


def claim_batch(
    conn: sa.Connection, *, owner: str, queues: Sequence[str], limit: int
) -> list[sa.Row[Any]]:
    """Claim up to ``limit`` waiting jobs of ``queues`` that are due, highest priority first.

    PostgreSQL: a ``SELECT ... FOR UPDATE SKIP LOCKED LIMIT n`` CTE feeding
    ``UPDATE ... RETURNING``. SQLite: ``UPDATE ... WHERE id IN (SELECT ... LIMIT n)
    RETURNING`` — the caller runs it in a ``BEGIN IMMEDIATE`` transaction.
    """

    def build(postgres: bool) -> sa.Update:
        where = [_QUEUES, sa.text(WAITING_SQL), _c.run_after <= db_now()]
        return _claim(postgres, where, [_c.priority.desc(), _c.run_after, _c.id])

    stmt = _cached(conn, "claim", build)
    params = {"owner": owner, "queues": list(queues), "limit": limit}
    return list(conn.execute(stmt, params))


def claim_expired(
    conn: sa.Connection, *, owner: str, queues: Sequence[str], limit: int
) -> list[sa.Row[Any]]:
    """Take over running jobs whose lease expired (with attempts left); counts an attempt."""

    def build(postgres: bool) -> sa.Update:
        where = [
            _UNPAUSED,
            sa.text(RUNNING_SQL),
            _c.lease_expires <= db_now(),
            _c.attempt < _c.max_attempts,
        ]
        return _claim(postgres, where, [_c.lease_expires])

    stmt = _cached(conn, "takeover", build)
    params = {"owner": owner, "queues": list(queues), "limit": limit}
    return list(conn.execute(stmt, params))


def next_due(conn: sa.Connection, *, queues: Sequence[str]) -> float | None:
    """Seconds from the database's now until the earliest waiting job of ``queues`` is
    due (negative: already due), or None when none is waiting."""

    def build(postgres: bool) -> sa.Select[Any]:
        return sa.select(sa.func.min(_c.run_after) - db_now()).where(_QUEUES, sa.text(WAITING_SQL))

    stmt = _cached(conn, "next_due", build)
    value = conn.execute(stmt, {"queues": list(queues)}).scalar()
    return None if value is None else float(value)


# A takeover does not start a new run (the row is running already): limits do not apply.
_UNPAUSED = sa.and_(
    _c.queue.in_(sa.bindparam("queues", expanding=True)),
    ~sa.exists().where(queues.c.queue == _c.queue, queues.c.paused == sa.true()),
)
_QUEUES = sa.and_(
    _c.queue.in_(sa.bindparam("queues", expanding=True)),
    # a paused queue is not claimed from (nor waited for); a flow-limited one only by the
    # limited claim (otelkit.jobs._flow), which holds its limits
    ~sa.exists().where(
        queues.c.queue == _c.queue, sa.or_(queues.c.paused == sa.true(), sa.text(LIMITED_SQL))
    ),
)
_KEYS = sa.tuple_(_c.id, _c.attempt).in_(sa.bindparam("keys", expanding=True))


def _claim(postgres: bool, where: Sequence[Any], order: Sequence[Any]) -> sa.Update:
    pick = sa.select(_c.id).where(*where).order_by(*order).limit(sa.bindparam("limit"))
    stmt: sa.Update
    if postgres:
        cte = pick.with_for_update(skip_locked=True).cte("ready")
        stmt = sa.update(jobs).where(_c.id == cte.c.id)
    else:
        stmt = sa.update(jobs).where(_c.id.in_(pick.scalar_subquery()))
    return stmt.values(claim_values(sa.bindparam("owner"))).returning(*jobs.c)


def _claim_by_id_statement(postgres: bool = False) -> sa.Update:
    """Claim one given job whatever its ``run_after`` (binds ``owner``, ``job_id``)."""
    ready = sa.or_(
        sa.text(WAITING_SQL),
        sa.and_(
            sa.text(RUNNING_SQL),
            _c.lease_expires <= db_now(),
            _c.attempt < _c.max_attempts,
        ),
    )
    return (
        sa.update(jobs)
        .where(_c.id == sa.bindparam("job_id"), ready)
        .values(claim_values(sa.bindparam("owner")))
        .returning(*jobs.c)
    )


def claim_by_id(conn: sa.Connection, *, owner: str, job_id: str) -> sa.Row[Any] | None:
    """Claim one given job now, whatever its ``run_after``; None if it is not claimable."""
    stmt = _cached(conn, "claim_by_id", _claim_by_id_statement)
    return conn.execute(stmt, {"owner": owner, "job_id": job_id}).first()


def finish(
    conn: sa.Connection, *, owner: str, transitions: Sequence[Transition], recheck: bool = True
) -> set[str]:
    """Apply fenced transitions; the ids whose row this owner still held (and changed).

    ``recheck``: count a row that already shows the transition as applied (a retried
    commit that had landed); off for late results, which must never count.
    """
    applied: set[str] = set()
    # Several plain successes: one statement for all; a single one takes the general
    # statement below (no expanding IN list to render).
    plain = [(t.job_id, t.attempt) for t in transitions if t.plain] if len(transitions) > 1 else []
    if plain:
        stmt = _cached(conn, "succeed", lambda postgres: _succeed())
        applied.update(conn.execute(stmt, {"owner": owner, "keys": plain}).scalars())
    for t in transitions:
        if plain and t.plain:
            continue
        shape = _end_shape(t)
        stmt = _cached(
            conn, f"end:{shape[0]:d}{shape[1]:d}", functools.partial(_end_statement, *shape)
        )
        applied.update(conn.execute(stmt, _end_params(owner, t)).scalars())
    missing = [t for t in transitions if t.job_id not in applied]
    if missing and recheck:
        applied.update(_already_applied(conn, owner, missing))
    return applied


def _end_shape(t: Transition) -> tuple[bool, bool]:
    """Which ending statement ``t`` needs: (sets errors, sets result)."""
    return t.errors is not None, t.has_result


def _end_params(owner: str, t: Transition) -> dict[str, Any]:
    """Bound values of :func:`_end_statement` for transition ``t``."""
    params: dict[str, Any] = {
        "job_id": t.job_id,
        "attempt": t.attempt,
        "owner": owner,
        "status": t.to.value,
        "final": t.to.is_final,
        "retry": t.to is JobState.RETRYING,
        "delay": t.delay,
        "last_error": t.last_error,
        "give_back": 1 if t.unstarted else 0,
    }
    if t.errors is not None:
        params["errors"] = t.errors
    if t.has_result:
        params["result"] = t.result
    return params


def _end_statement(with_errors: bool, with_result: bool, postgres: bool = False) -> sa.Update:
    """The fenced UPDATE ending an attempt (all values bound: built once per shape; the
    same on every dialect)."""
    now = db_now()
    p = sa.bindparam
    values: dict[str, Any] = {
        "status": p("status", type_=sa.String),
        "lease_expires": None,
        "updated_at": now,
        "finished_at": sa.case((p("final", type_=sa.Boolean), now), else_=sa.null()),
        "run_after": sa.case(
            (p("retry", type_=sa.Boolean), now + p("delay", type_=sa.Double)),
            else_=_c.run_after,
        ),
        "last_error": sa.func.coalesce(p("last_error", type_=sa.Text), _c.last_error),
        "attempt": _c.attempt - p("give_back", type_=sa.Integer),
    }
    if with_errors:
        values["errors"] = p("errors", type_=JSON)
    if with_result:
        values["result"] = p("result", type_=JSON)
    return (
        sa.update(jobs)
        .where(
            _c.id == p("job_id"),
            _c.attempt == p("attempt"),
            _c.lease_owner == p("owner"),
            sa.text(RUNNING_SQL),
        )
        .values(values)
        .returning(_c.id)
    )


def _succeed() -> sa.Update:
    now = db_now()
    return (
        sa.update(jobs)
        .where(_c.lease_owner == sa.bindparam("owner"), sa.text(RUNNING_SQL), _KEYS)
        .values(
            status=JobState.SUCCEEDED.value, lease_expires=None, updated_at=now, finished_at=now
        )
        .returning(_c.id)
    )


def _already_applied(conn: sa.Connection, owner: str, missing: Sequence[Transition]) -> set[str]:
    """Rows that already show our transition (a retried commit that had in fact landed)."""
    rows = conn.execute(
        sa.select(_c.id, _c.status, _c.attempt, _c.lease_owner, _c.lease_expires).where(
            _c.id.in_([t.job_id for t in missing])
        )
    )
    by_id = {row.id: row for row in rows}
    done: set[str] = set()
    for t in missing:
        row = by_id.get(t.job_id)
        attempt = t.attempt - 1 if t.unstarted else t.attempt
        if (
            row is not None
            and row.lease_owner == owner
            and row.status == t.to.value
            and row.attempt == attempt
            and row.lease_expires is None
        ):
            done.add(t.job_id)
    return done


def cancelled_during(conn: sa.Connection, attempts: Sequence[tuple[str, int]]) -> set[str]:
    """Of these rejected (job id, attempt) pairs, the jobs cancelled while that attempt held
    them: a cancel keeps the attempt number, a takeover by another worker raises it."""
    wanted = dict(attempts)
    rows = conn.execute(
        sa.select(_c.id, _c.attempt).where(
            _c.id.in_(list(wanted)), _c.status == JobState.CANCELLED.value
        )
    )
    return {row.id for row in rows if wanted.get(row.id) == row.attempt}


def record_lost(
    conn: sa.Connection, *, owner: str, lost: Iterable[tuple[str, int]], reason: str
) -> None:
    """Write a history row for every attempt whose result was rejected by the fence."""
    for job_id, attempt in lost:
        conn.execute(
            sa.insert(history).values(
                job_id=job_id,
                from_status=_RUNNING,
                to_status=LOST,
                at=db_now(),
                attempt=attempt,
                worker=owner,
                error=reason,
            )
        )


def renew(conn: sa.Connection, *, owner: str, leases: Sequence[tuple[str, int]]) -> set[str]:
    """Extend the leases this owner still holds by each job's lease length; those ids."""

    def build(postgres: bool) -> sa.Update:
        return (
            sa.update(jobs)
            .where(_c.lease_owner == sa.bindparam("owner"), sa.text(RUNNING_SQL), _KEYS)
            .values(lease_expires=db_now() + _c.lease_seconds)
            .returning(_c.id)
        )

    stmt = _cached(conn, "renew", build)
    return set(conn.execute(stmt, {"owner": owner, "keys": list(leases)}).scalars())


def exhausted_expired(conn: sa.Connection, *, limit: int, lock: bool = True) -> list[sa.Row[Any]]:
    """Running jobs whose lease expired on their last allowed attempt (to be failed)."""
    now = db_now()
    stmt = (
        sa.select(*jobs.c)
        .where(_c.status == _RUNNING, _c.lease_expires <= now, _c.attempt >= _c.max_attempts)
        .order_by(_c.lease_expires)
        .limit(limit)
    )
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(conn.execute(stmt))
