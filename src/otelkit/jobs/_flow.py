"""Flow control at claim time: concurrency per queue and per key, rates, fair rotation.

The jobs of a queue with limits (``otelkit_job_queues.limited``) are left out of the plain
claim (:mod:`otelkit.jobs._claim`) and claimed here:

1. **Lock.** The settings rows of the worker's limited queues are locked, so the claims of
   one limited queue take turns across processes and machines.
2. **Claim.** The queue's room is the smallest of the claim's room and what its limits
   leave (the limit minus running jobs, minus recent starts); for keyed queues, ready jobs
   are ranked within their key (``row_number() OVER (PARTITION BY limit_key)``) so that
   claims take the first job of every key before the second of any: a small tenant's job
   starts promptly behind another's backlog, and a key at its limit is skipped.
3. **Log starts** (rate-limited queues only) in ``otelkit_job_starts``, the sliding-window
   log that the next claim counts; rows older than the longest period are deleted.

On PostgreSQL the three steps are one call of a PL/pgSQL function that ``create_schema``
makes (``otelkit_jobs_flow_claim``, in :mod:`otelkit.jobs._schema`): in autocommit mode it
holds the row lock (``FOR UPDATE``) only while the server executes it, and each statement
after the lock reads a fresh snapshot that holds everything the previous holder committed.
(A worker that finished attempts calls it at the end of the transaction that records them,
and holds the lock until that commit.) A single statement could not do this: a statement
that waits for a lock keeps the snapshot it started with. On SQLite the worker's ``BEGIN
IMMEDIATE`` transaction already holds the database's write lock, and one ``UPDATE ...
RETURNING`` per queue, built for the shape of its limits, counts and claims.

Finishing an attempt takes no lock: it only frees a slot, which the next claim sees. A
claim that takes fewer jobs than it could asks one more statement why (:func:`_explain`),
records the reason on the queue row (``throttled_at``/``throttled_reason``: the span event
of a held attempt and ``jobs list`` read it) and tells the worker when to try again: a rate
says when its window lets one more start; a concurrency limit waits for the ``NOTIFY`` that
the jobs table's trigger sends when a running job of a limited queue ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from otelkit.jobs._claim import claim_values
from otelkit.jobs._limits import Limits, QueueLimits, Rate, WaitReason
from otelkit.jobs._model import Job, JobState, from_epoch
from otelkit.jobs._schema import (
    FLOW_CLAIM,
    JSON,
    LIMITED_SQL,
    RUNNING_SQL,
    WAITING_SQL,
    db_now,
    dialect_insert,
    jobs,
    queues,
    starts,
)
from otelkit.jobs._wakeup import CHANNEL

__all__ = [
    "FlowClaim",
    "HoldInfo",
    "claim",
    "clear_code_limits",
    "limits_of_row",
    "read_limits",
    "wait_reasons",
    "write_limits",
]

_c = jobs.c
_q = queues.c
_s = starts.c
CODE = "code"
OPERATOR = "operator"


@dataclass(frozen=True)
class HoldInfo:
    """What the queue row said before this claim: when a claim was last held back, why."""

    throttled_at: float
    reason: str


@dataclass
class FlowClaim:
    """The outcome of the limited claim of one worker cycle."""

    rows: list[Any] = field(default_factory=list)
    limited: frozenset[str] = frozenset()
    """The worker's queues that have limits (the plain claim skips them)."""
    held: dict[str, str] = field(default_factory=dict)
    """Queue -> the limit that held back ready jobs in this claim."""
    holds: dict[str, HoldInfo] = field(default_factory=dict)
    """Queue -> its previous hold (an attempt ready before it was held back)."""
    wake_in: float | None = None
    """Seconds until a rate window or a future job lets this claim take more (None: a
    ``NOTIFY`` or the poll)."""


# -- limits as stored ------------------------------------------------------------------------
def limits_of_row(row: Mapping[Any, Any]) -> Limits:
    """The :class:`Limits` of a settings row (as a mapping)."""
    rate = None if row["rate_limit"] is None else Rate(row["rate_limit"], per=row["rate_period"])
    key_rate = None
    if row["key_rate_limit"] is not None:
        key_rate = Rate(row["key_rate_limit"], per=row["key_rate_period"])
    return Limits(
        concurrency=row["concurrency"],
        key_concurrency=row["key_concurrency"],
        rate=rate,
        key_rate=key_rate,
        fair=bool(row["fair"]),
    )


def _columns(limits: Limits) -> dict[str, Any]:
    return {
        "limited": not limits.empty,
        "concurrency": limits.concurrency,
        "key_concurrency": limits.key_concurrency,
        "rate_limit": None if limits.rate is None else limits.rate.limit,
        "rate_period": None if limits.rate is None else limits.rate.seconds,
        "key_rate_limit": None if limits.key_rate is None else limits.key_rate.limit,
        "key_rate_period": None if limits.key_rate is None else limits.key_rate.seconds,
        "fair": limits.fair,
    }


def write_limits(
    conn: sa.Connection, queue: str, limits: Limits, *, set_by: str, reset: bool = False
) -> bool:
    """Store ``queue``'s limits; whether the row changed. Code's values never replace an
    operator's unless ``reset``. Wakes listening workers (PostgreSQL)."""
    values = {**_columns(limits), "limits_set_by": set_by, "limits_updated_at": db_now()}
    stmt = dialect_insert(conn.dialect.name, queues).values(
        queue=queue, paused=False, updated_at=db_now(), **values
    )
    changed = sa.or_(
        *(
            _q[name].is_distinct_from(value) if value is not None else _q[name].is_not(None)
            for name, value in _columns(limits).items()
        ),
        _q.limits_set_by.is_distinct_from(set_by),
    )
    where = changed
    if set_by == CODE and not reset:
        where = sa.and_(changed, _q.limits_set_by.is_distinct_from(OPERATOR))
    stmt = stmt.on_conflict_do_update(index_elements=[_q.queue], set_=values, where=where)
    done = conn.execute(stmt.returning(_q.queue)).first() is not None
    if done and conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_notify(CHANNEL, queue + " 0")))
    return done


def clear_code_limits(conn: sa.Connection, queue: str) -> bool:
    """Remove limits that code declared for ``queue`` (an operator's stay); whether any."""
    stmt = (
        sa.update(queues)
        .where(_q.queue == queue, _q.limits_set_by == CODE, sa.text(LIMITED_SQL))
        .values(**_columns(Limits()), limits_updated_at=db_now())
    )
    return bool(conn.execute(stmt).rowcount)


def read_limits(engine: sa.Engine, queue: str | None = None) -> list[QueueLimits]:
    """The queues with limits (or an operator's setting), by name, with running counts."""
    running = (
        sa.select(sa.func.count())
        .where(_c.queue == _q.queue, sa.text(RUNNING_SQL))
        .scalar_subquery()
    )
    stmt = (
        sa.select(queues, running.label("running"))
        .where(sa.or_(sa.text(LIMITED_SQL), _q.limits_set_by == OPERATOR))
        .order_by(_q.queue)
    )
    if queue is not None:
        stmt = stmt.where(_q.queue == queue)
    with engine.connect() as conn:
        return [
            QueueLimits(
                queue=row.queue,
                limits=limits_of_row(row._mapping),
                set_by="operator" if row.limits_set_by == OPERATOR else "code",
                updated_at=from_epoch(row.limits_updated_at),
                running=int(row.running),
                throttled_at=from_epoch(row.throttled_at),
                throttled_reason=row.throttled_reason,
            )
            for row in conn.execute(stmt)
        ]


# -- the limited claim -----------------------------------------------------------------------
def claim(conn: sa.Connection, *, owner: str, queues_: Sequence[str], limit: int) -> FlowClaim:
    """Claim up to ``limit`` jobs of the limited queues among ``queues_`` (see the module)."""
    claim_in = _claim_on_server if conn.dialect.name == "postgresql" else _claim_here
    taken = claim_in(conn, owner, list(queues_), limit)
    outcome = FlowClaim(limited=frozenset(settings["queue"] for settings, _ in taken))
    for settings, _ in taken:
        if settings["throttled_at"] is not None:
            hold = HoldInfo(settings["throttled_at"], settings["throttled_reason"] or "")
            outcome.holds[settings["queue"]] = hold
    for settings, got in taken:
        room = limit - len(outcome.rows)
        if room <= 0:
            break
        outcome.rows += got
        if len(got) < room:
            queue = settings["queue"]
            reason, wake = _explain(conn, queue, limits_of_row(settings))
            if reason is not None:
                outcome.held[queue] = reason
                conn.execute(
                    sa.update(queues)
                    .where(_q.queue == queue)
                    .values(throttled_at=db_now(), throttled_reason=reason)
                )
            if wake is not None:
                outcome.wake_in = wake if outcome.wake_in is None else min(outcome.wake_in, wake)
    return outcome


_Taken = list[tuple[Mapping[Any, Any], list[Any]]]
"""Each limited queue's settings row as it was before the claim, and the jobs claimed from
it, in lock order."""

# The job's columns by name, in the table's order: ``.columns()`` matches by position, and
# a database's column order is the order its migrations added them.
_SERVER_CLAIM = sa.text(
    f"SELECT {', '.join(f'(f.job).{c.name}' for c in jobs.c)}, f.settings "
    f"FROM {FLOW_CLAIM}(:queues, :owner, :room) AS f"
).columns(*jobs.c, sa.column("settings", JSON))


def _claim_on_server(conn: sa.Connection, owner: str, queues_: list[str], limit: int) -> _Taken:
    """PostgreSQL: lock, count, claim and log starts in one call of the function that
    ``create_schema`` made (its rows: a queue's settings, then the jobs claimed from it)."""
    taken: _Taken = []
    for row in conn.execute(_SERVER_CLAIM, {"queues": queues_, "owner": owner, "room": limit}):
        if row.settings is not None:
            taken.append((row.settings, []))
        else:
            taken[-1][1].append(row)
    return taken


def _claim_here(conn: sa.Connection, owner: str, queues_: list[str], limit: int) -> _Taken:
    """SQLite: the ``BEGIN IMMEDIATE`` transaction already holds the database's write lock;
    one claim statement per queue, shaped by its limits."""
    taken: _Taken = []
    room = limit
    for row in list(conn.execute(_cached("lock", _lock_statement), {"queues": queues_})):
        settings = row._mapping
        got: list[Any] = []
        if room > 0:
            limits = limits_of_row(settings)
            params = _params(row.queue, limits, owner, room)
            got = list(conn.execute(_cached(_shape(limits), _claim_builder(limits)), params))
            if got and (limits.rate is not None or limits.key_rate is not None):
                _log_starts(conn, row.queue, limits, got)
            room -= len(got)
        taken.append((settings, got))
    return taken


_cache: dict[str, Any] = {}


def _cached(kind: str, build: Any) -> Any:
    stmt = _cache.get(kind)
    if stmt is None:
        stmt = _cache[kind] = build()
    return stmt


def _lock_statement() -> sa.Select[Any]:
    return (
        sa.select(queues)
        .where(
            _q.queue.in_(sa.bindparam("queues", expanding=True)),
            sa.text(LIMITED_SQL),
            _q.paused == sa.false(),
        )
        .order_by(_q.queue)
    )


def _shape(limits: Limits) -> str:
    flags = (
        limits.keyed,
        limits.concurrency is not None,
        limits.key_concurrency is not None,
        limits.rate is not None,
        limits.key_rate is not None,
    )
    return "flow:" + "".join("1" if f else "0" for f in flags)


def _params(queue: str, limits: Limits, owner: str, room: int) -> dict[str, Any]:
    params: dict[str, Any] = {"flow_queue": queue, "owner": owner, "room": room}
    if limits.concurrency is not None:
        params["concurrency"] = limits.concurrency
    if limits.key_concurrency is not None:
        params["key_concurrency"] = limits.key_concurrency
    if limits.rate is not None:
        params["rate_limit"] = limits.rate.limit
        params["rate_period"] = limits.rate.seconds
    if limits.key_rate is not None:
        params["key_rate_limit"] = limits.key_rate.limit
        params["key_rate_period"] = limits.key_rate.seconds
    return params


def _least(values: Sequence[Any]) -> Any:
    """The smallest of integer expressions, never below 0 (SQLite's multi-argument
    ``min``/``max``)."""
    return sa.func.max(0, values[0] if len(values) == 1 else sa.func.min(*values))


def _running(queue: Any) -> Any:
    return (
        sa.select(sa.func.count()).where(_c.queue == queue, sa.text(RUNNING_SQL)).scalar_subquery()
    )


def _started(queue: Any, period: Any) -> Any:
    return (
        sa.select(sa.func.count())
        .where(_s.queue == queue, _s.at > db_now() - period)
        .scalar_subquery()
    )


def _claim_builder(limits: Limits) -> Any:
    keyed = limits.keyed
    conc = limits.concurrency is not None
    key_conc = limits.key_concurrency is not None
    rate = limits.rate is not None
    key_rate = limits.key_rate is not None

    def build() -> sa.Update:
        p = sa.bindparam
        queue = p("flow_queue", type_=sa.String)
        ready: list[Any] = [_c.queue == queue, sa.text(WAITING_SQL), _c.run_after <= db_now()]
        order = [_c.priority.desc(), _c.run_after, _c.id]
        pick: sa.Select[Any]
        if keyed:
            rank = sa.func.row_number().over(partition_by=_c.limit_key, order_by=order)
            ranked = (
                sa.select(_c.id, _c.priority, _c.run_after, _c.limit_key, rank.label("rn"))
                .where(*ready)
                .subquery("ranked")
            )
            r = ranked.c
            source: Any = ranked
            keep = []
            if key_conc:
                busy = (
                    sa.select(_c.limit_key, sa.func.count().label("n"))
                    .where(_c.queue == queue, sa.text(RUNNING_SQL), _c.limit_key.is_not(None))
                    .group_by(_c.limit_key)
                    .subquery("busy")
                )
                source = source.outerjoin(busy, busy.c.limit_key == r.limit_key)
                used = r.rn + sa.func.coalesce(busy.c.n, 0)
                keep.append(sa.or_(r.limit_key.is_(None), used <= p("key_concurrency")))
            if key_rate:
                recent = (
                    sa.select(_s.limit_key, sa.func.count().label("n"))
                    .where(
                        _s.queue == queue,
                        _s.at > db_now() - p("key_rate_period", type_=sa.Double),
                        _s.limit_key.is_not(None),
                    )
                    .group_by(_s.limit_key)
                    .subquery("recent")
                )
                source = source.outerjoin(recent, recent.c.limit_key == r.limit_key)
                used = r.rn + sa.func.coalesce(recent.c.n, 0)
                keep.append(sa.or_(r.limit_key.is_(None), used <= p("key_rate_limit")))
            # priority first; within one priority the first job of every key, then the
            # second, ... (the rotation between keys)
            columns = [r.id, r.priority, r.rn, r.run_after]
            pick = sa.select(*columns).select_from(source).where(*keep)
        else:
            columns = [_c.id, _c.priority, _c.run_after]
            pick = sa.select(*columns).where(*ready)
        # The first ``room`` in claim order (a constant LIMIT: the planner expects that few
        # rows and takes them by index), then as many of those as the limits leave room for.
        first = (
            pick.order_by(columns[1].desc(), *columns[2:], columns[0])
            .limit(p("room", type_=sa.Integer))
            .subquery("first")
        )
        f = first.c
        pick = sa.select(f.id).order_by(f.priority.desc(), *(f[c.name] for c in columns[2:]), f.id)
        rooms: list[Any] = []
        if conc:
            rooms.append(p("concurrency", type_=sa.Integer) - _running(queue))
        if rate:
            rooms.append(
                p("rate_limit", type_=sa.Integer)
                - _started(queue, p("rate_period", type_=sa.Double))
            )
        if rooms:
            pick = pick.limit(_least(rooms))
        return (
            sa.update(jobs)
            .where(_c.id.in_(pick.scalar_subquery()), sa.text(WAITING_SQL))
            .values(claim_values(p("owner")))
            .returning(*jobs.c)
        )

    return build


def _log_starts(conn: sa.Connection, queue: str, limits: Limits, claimed: Sequence[Any]) -> None:
    """Log the starts (one row each, at the claim's own time: the time the history shows)
    and forget those older than the longest period."""
    keep = max(r.seconds for r in (limits.rate, limits.key_rate) if r is not None)
    conn.execute(sa.delete(starts).where(_s.queue == queue, _s.at <= db_now() - keep))
    conn.execute(
        sa.insert(starts),
        [{"queue": queue, "limit_key": r.limit_key, "at": r.updated_at} for r in claimed],
    )


def _explain(conn: sa.Connection, queue: str, limits: Limits) -> tuple[str | None, float | None]:
    """Why the claim of ``queue`` took fewer jobs than it could: (the binding limit, or None
    when no ready job is left; seconds until it may let one more start, or None)."""
    now = db_now()
    q: Any = sa.bindparam("queue", queue)
    ready = sa.exists().where(_c.queue == q, sa.text(WAITING_SQL), _c.run_after <= now)
    future = (
        sa.select(sa.func.min(_c.run_after))
        .where(_c.queue == q, sa.text(WAITING_SQL), _c.run_after > now)
        .scalar_subquery()
    )
    columns: list[Any] = [ready.label("ready"), (future - now).label("due_in")]
    if limits.concurrency is not None:
        columns.append(_running(q).label("running"))
    for name, rate in (("rate", limits.rate), ("key_rate", limits.key_rate)):
        if rate is not None:
            window = sa.and_(_s.queue == q, _s.at > now - rate.seconds)
            columns.append(sa.select(sa.func.count()).where(window).scalar_subquery().label(name))
            oldest = sa.select(sa.func.min(_s.at)).where(window).scalar_subquery()
            columns.append((oldest + rate.seconds - now).label(f"{name}_in"))
    row = conn.execute(sa.select(*columns)).one()._mapping
    due_in = None if row["due_in"] is None else max(0.0, float(row["due_in"]))
    if not row["ready"]:
        return None, due_in
    wake = None
    if limits.concurrency is not None and row["running"] >= limits.concurrency:
        reason = "concurrency"
    elif limits.rate is not None and row["rate"] >= limits.rate.limit:
        reason, wake = "rate", row["rate_in"]
    elif limits.key_concurrency is not None or limits.key_rate is not None:
        # every key with ready jobs is at its limit (with both key limits set, reported as
        # key_concurrency; a key rate's window is still waited for)
        reason = "key_concurrency" if limits.key_concurrency is not None else "key_rate"
        if limits.key_rate is not None:
            wake = row["key_rate_in"]
    else:  # room left and jobs ready: they became ready after the claim's snapshot
        return None, 0.0
    if wake is not None:
        wake = max(0.001, float(wake))
    if due_in is not None:
        wake = due_in if wake is None else min(wake, due_in)
    return reason, wake


# -- why a ready job waits -------------------------------------------------------------------
def wait_reasons(engine: sa.Engine, jobs_: Iterable[Job]) -> dict[str, WaitReason]:
    """For each ready job (queued or retrying, due) held by a paused queue or a limit that
    binds now, why it waits; jobs that wait only for a free worker are left out."""
    ready = [j for j in jobs_ if j.state in (JobState.QUEUED, JobState.RETRYING)]
    if not ready:
        return {}
    names = sorted({j.queue for j in ready})
    with engine.connect() as conn:
        now = float(conn.execute(sa.select(db_now())).scalar_one())
        ready = [j for j in ready if j.run_after is None or j.run_after.timestamp() <= now]
        rows = conn.execute(
            sa.select(queues).where(
                _q.queue.in_(names), sa.or_(_q.paused == sa.true(), sa.text(LIMITED_SQL))
            )
        )
        settings = {row.queue: row for row in rows}
        found: dict[str, WaitReason] = {}
        for queue, row in settings.items():
            members = [j for j in ready if j.queue == queue]
            if row.paused:
                message = f"paused: queue {queue!r} is paused (otelkit jobs resume {queue})"
                found.update({j.id: WaitReason("paused", message) for j in members})
                continue
            found.update(_why(conn, queue, limits_of_row(row._mapping), members, now))
    return found


def _why(
    conn: sa.Connection, queue: str, limits: Limits, members: Sequence[Job], now: float
) -> Mapping[str, WaitReason]:
    if limits.concurrency is not None:
        running = conn.execute(sa.select(_running(sa.literal(queue)))).scalar_one()
        if running >= limits.concurrency:
            message = f"concurrency: {running} of {limits.concurrency} running in queue {queue!r}"
            return {j.id: WaitReason("concurrency", message) for j in members}
    if limits.rate is not None:
        held = _rate_hold(conn, queue, None, limits.rate, now)
        if held is not None:
            count, retry = held
            message = (
                f"rate: {count} starts in the last {limits.rate.seconds:g} s in queue "
                f"{queue!r} (limit {limits.rate.limit}); next in {retry:.2f} s"
            )
            return {j.id: WaitReason("rate", message, retry) for j in members}
    found: dict[str, WaitReason] = {}
    keys = sorted({j.limit_key for j in members if j.limit_key is not None})
    if not keys:
        return found
    busy: dict[str, int] = {}
    if limits.key_concurrency is not None:
        stmt = (
            sa.select(_c.limit_key, sa.func.count())
            .where(_c.queue == queue, sa.text(RUNNING_SQL), _c.limit_key.in_(keys))
            .group_by(_c.limit_key)
        )
        busy = {key: int(n) for key, n in conn.execute(stmt)}
    for key in keys:
        reason = None
        if limits.key_concurrency is not None and busy.get(key, 0) >= limits.key_concurrency:
            message = (
                f"key_concurrency: {busy[key]} of {limits.key_concurrency} running for key "
                f"{key!r} in queue {queue!r}"
            )
            reason = WaitReason("key_concurrency", message)
        elif limits.key_rate is not None:
            held = _rate_hold(conn, queue, key, limits.key_rate, now)
            if held is not None:
                count, retry = held
                message = (
                    f"key_rate: {count} starts in the last {limits.key_rate.seconds:g} s for "
                    f"key {key!r} (limit {limits.key_rate.limit}); next in {retry:.2f} s"
                )
                reason = WaitReason("key_rate", message, retry)
        if reason is not None:
            found.update({j.id: reason for j in members if j.limit_key == key})
    return found


def _rate_hold(
    conn: sa.Connection, queue: str, key: str | None, rate: Rate, now: float
) -> tuple[int, float] | None:
    """(starts in the window, seconds until one more may start) if the window is full."""
    where = [_s.queue == queue, _s.at > now - rate.seconds]
    if key is not None:
        where.append(_s.limit_key == key)
    count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(_s.at)).where(*where)).one()
    if count < rate.limit:
        return None
    return int(count), max(0.0, float(oldest) + rate.seconds - now)
