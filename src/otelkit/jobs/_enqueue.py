"""Enqueue: validate everything first, then one INSERT (one round trip) in a PRODUCER span.

The INSERT carries ``ON CONFLICT (name, unique_key, unique_period) WHERE ... DO NOTHING
RETURNING id``: a job whose unique key is held by another job is not inserted, and the
holder's id is looked up instead (race-safe across processes: the unique partial index
decides, never a check before the insert). Rows go in one multi-row statement
(SQLAlchemy's "insertmanyvalues"), so a batch costs one round trip and, on PostgreSQL,
one run of the statement-level history trigger.

The transaction is the store's own, or the caller's (``connection=``/``session=``): then
the job exists only once the caller commits.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from otelkit._validate import check_positive, check_str
from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.jobs._definition import Definition
from otelkit.jobs._limits import key_of
from otelkit.jobs._model import JobState, check_json
from otelkit.jobs._schema import UNIQUE_SQL, WHILE_ACTIVE, db_now, dialect_insert, jobs

__all__ = [
    "Batch",
    "Item",
    "Options",
    "check_unique_key",
    "data_key",
    "insert",
    "items_of",
    "make_options",
    "prepare",
    "unique_key_of",
]

_c = jobs.c
_ROUNDS = 4  # a key's holder may finish between our INSERT and its lookup: try again


@dataclass(frozen=True)
class Item:
    """One job to enqueue: its data, chosen id and unique key (None: none)."""

    data: Any
    id: str | None = None
    unique_key: str | None = None
    limit_key: str | None = None
    """Given at enqueue; None: the function's ``limit_key`` of the data, if it has one."""


@dataclass(frozen=True)
class Options:
    """Validated options shared by the jobs of one enqueue call."""

    at: float | None
    delay: float
    priority: int
    unique_for: float | None


@dataclass
class Batch:
    """Rows ready to insert, in the caller's order (repeated keys point at their first)."""

    definition: Definition
    options: Options
    rows: list[dict[str, Any]]
    order: list[int]
    """For each item, the index of the row that carries it."""
    datas: str = "[]"
    """The rows' data as one JSON array (serialised once for the whole batch)."""


def make_options(
    where: str,
    *,
    run_after: datetime | timedelta | float | None,
    priority: int,
    unique_for: timedelta | float | None,
) -> Options:
    """Check the options of one call (``where`` names it in errors)."""
    at, delay = _run_after(run_after)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {priority!r}")
    period = None
    if unique_for is not None:
        if isinstance(unique_for, timedelta):
            unique_for = unique_for.total_seconds()
        period = check_positive(where, "unique_for", unique_for)
    return Options(at=at, delay=delay, priority=priority, unique_for=period)


def check_unique_key(where: str, value: object, option: str = "unique_key") -> str:
    """A caller's unique key: a non-empty str of <= 200 characters."""
    key = check_str(where, option, value)
    if len(key) > 200:
        raise InvalidOptionError(
            f"{where}: {option} must be at most 200 characters, got {len(key)}"
        )
    return key


def data_key(data: Any) -> str:
    """The unique key meaning "same function, same data": a hash of the canonical JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "data:" + hashlib.sha256(text.encode()).hexdigest()


def prepare(
    where: str, definition: Definition, items: Sequence[Item], options: Options, *, now: float
) -> Batch:
    """Validate the items into rows; raises before anything is written.

    ``now`` (epoch seconds, the store's clock) places a ``unique_for`` key in its period.
    """
    rows: list[dict[str, Any]] = []
    order: list[int] = []
    seen_ids: set[str] = set()
    seen_keys: dict[str, int] = {}
    period = WHILE_ACTIVE
    if options.unique_for is not None:
        period = math.floor(now / options.unique_for) * options.unique_for
    key_fn = definition.limit_key
    checked = ""
    try:  # one serialisation for the batch; per item only to name a bad one
        checked = json.dumps([item.data for item in items], allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        for item in items:
            check_json(item.data, option="data")
    for item in items:
        key = item.unique_key
        if key is not None and key in seen_keys:  # the same key twice in one call: one job
            order.append(seen_keys[key])
            continue
        job_id = item.id
        if job_id is None:
            job_id = os.urandom(16).hex()
        elif not isinstance(job_id, str) or not job_id or len(job_id) > 200:
            raise ValueError(f"id must be a non-empty str of <= 200 characters, got {job_id!r}")
        if job_id in seen_ids:
            raise ValueError(f"id {job_id!r} appears twice in one enqueue")
        seen_ids.add(job_id)
        if key is not None:
            seen_keys[key] = len(rows)
        order.append(len(rows))
        limit_key = item.limit_key
        if limit_key is None and key_fn is not None:
            limit_key = key_of(where, definition.name, key_fn, item.data)
        rows.append(
            {
                "id": job_id,
                "data": item.data,
                "unique_key": key,
                "unique_period": None if key is None else period,
                "limit_key": limit_key,
            }
        )
    if options.unique_for is not None and not seen_keys and rows:
        raise InvalidOptionError(
            f"{where}: unique_for needs a unique key: pass unique_key=... (enqueue_many: "
            "unique_keys=[...]) or unique=True"
        )
    datas = checked
    if len(rows) != len(items):  # repeated keys: only the first of each is a row
        datas = json.dumps([row["data"] for row in rows], separators=(",", ":"))
    return Batch(definition=definition, options=options, rows=rows, order=order, datas=datas)


def insert(conn: sa.Connection, batch: Batch, carrier: dict[str, str]) -> list[tuple[str, bool]]:
    """Insert the batch on ``conn`` (no commit); per item: (job id, was a duplicate)."""
    postgres = conn.dialect.name == "postgresql"
    stmt = None if postgres else _statement(conn.dialect.name, batch, carrier)
    outcome: dict[int, tuple[str, bool]] = {}
    pending = list(range(len(batch.rows)))
    for _ in range(_ROUNDS):
        params = [batch.rows[i] for i in pending]
        if stmt is None:
            inserted = _insert_unnest(conn, batch, params, carrier)
        else:
            result = conn.execute(stmt, params[0] if len(params) == 1 else params)
            inserted = set(result.scalars())
        conflicted = []
        for i in pending:
            if batch.rows[i]["id"] in inserted:
                outcome[i] = (batch.rows[i]["id"], False)
            else:
                conflicted.append(i)
        if not conflicted:
            break
        holders = _holders(conn, batch.definition.name, [batch.rows[i] for i in conflicted])
        pending = []
        for i in conflicted:
            row = batch.rows[i]
            holder = holders.get((row["unique_key"], row["unique_period"]))
            if holder is None:
                pending.append(i)  # the holder finished meanwhile: the key is free again
            else:
                outcome[i] = (holder, True)
        if not pending:
            break
    else:
        raise RuntimeError(
            f"enqueue: the unique keys of {len(pending)} jobs kept changing hands; try again"
        )
    results = []
    carried: set[int] = set()
    for row_index in batch.order:
        job_id, duplicate = outcome[row_index]
        # a key repeated within the call: the later items are duplicates of the first
        results.append((job_id, duplicate or row_index in carried))
        carried.add(row_index)
    return results


def _statement(dialect: str, batch: Batch, carrier: dict[str, str]) -> Any:
    d = batch.definition
    o = batch.options
    now = db_now()
    stmt = dialect_insert(dialect, jobs).values(
        name=d.name,
        queue=d.queue,
        status=JobState.QUEUED.value,
        priority=o.priority,
        attempt=0,
        max_attempts=d.max_attempts,
        lease_seconds=d.lease,
        run_after=sa.func.coalesce(sa.literal(o.at, sa.Double), now + o.delay),
        created_at=now,
        updated_at=now,
        trace_context=carrier,
        errors=[],
    )
    stmt = stmt.on_conflict_do_nothing(
        index_elements=[_c.name, _c.unique_key, _c.unique_period],
        index_where=sa.text(UNIQUE_SQL),
    )
    return stmt.returning(_c.id)


# PostgreSQL: the rows travel as three arrays and one JSON array of the data (a statement of
# constant text whatever the batch size, not a 1,000-row VALUES list to build and parse).
_UNNEST_SQL = f"""INSERT INTO {jobs.name} (id, name, queue, status, priority, attempt,
  max_attempts, lease_seconds, run_after, created_at, updated_at, trace_context, errors, data,
  unique_key, unique_period, limit_key)
SELECT u.id, %(name)s, %(queue)s, 'queued', %(priority)s, 0, %(max_attempts)s,
  %(lease)s, coalesce(%(at)s::float8, n.now + %(delay)s), n.now, n.now,
  %(carrier)s::jsonb, '[]'::jsonb, d.datas -> (u.n::int - 1), u.unique_key, u.unique_period,
  u.limit_key
FROM unnest(%(ids)s::varchar[], %(keys)s::varchar[], %(periods)s::float8[],
  %(limit_keys)s::varchar[]) WITH ORDINALITY AS u(id, unique_key, unique_period, limit_key, n),
  (SELECT %(datas)s::jsonb AS datas) AS d,
  (SELECT CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS DOUBLE PRECISION) AS now) AS n
"""
_UNNEST_UNIQUE_SQL = (
    _UNNEST_SQL + f"ON CONFLICT (name, unique_key, unique_period) WHERE {UNIQUE_SQL} DO NOTHING\n"
    "RETURNING id"
)


def _insert_unnest(
    conn: sa.Connection, batch: Batch, rows: Sequence[dict[str, Any]], carrier: dict[str, str]
) -> set[str]:
    d = batch.definition
    o = batch.options
    params = {
        "name": d.name,
        "queue": d.queue,
        "priority": o.priority,
        "max_attempts": d.max_attempts,
        "lease": d.lease,
        "at": o.at,
        "delay": o.delay,
        "carrier": json.dumps(carrier),
        "ids": [row["id"] for row in rows],
        "datas": batch.datas
        if len(rows) == len(batch.rows)
        else json.dumps([row["data"] for row in rows], separators=(",", ":")),
        "keys": [row["unique_key"] for row in rows],
        "periods": [row["unique_period"] for row in rows],
        "limit_keys": [row["limit_key"] for row in rows],
    }
    if all(row["unique_key"] is None for row in rows):  # no conflict possible: no RETURNING
        conn.exec_driver_sql(_UNNEST_SQL, params)
        return {row["id"] for row in rows}
    return set(conn.exec_driver_sql(_UNNEST_UNIQUE_SQL, params).scalars())


def _holders(
    conn: sa.Connection, name: str, rows: Sequence[dict[str, Any]]
) -> dict[tuple[str, float], str]:
    """The jobs that hold these rows' keys now: (key, period) -> id."""
    keys = sorted({row["unique_key"] for row in rows if row["unique_key"] is not None})
    if not keys:
        return {}
    stmt = sa.select(_c.id, _c.unique_key, _c.unique_period).where(
        _c.name == name, _c.unique_key.in_(keys), sa.text(UNIQUE_SQL)
    )
    return {(r.unique_key, r.unique_period): r.id for r in conn.execute(stmt)}


def check_connection(
    where: str, connection: object, engine: sa.Engine, *, kind: type[Any], hint: str
) -> None:
    """``connection`` must be a ``kind`` inside a transaction, on the store's database."""
    if not isinstance(connection, kind):
        raise OptionTypeError(
            f"{where}: connection must be a {kind.__module__}.{kind.__qualname__}{hint}, "
            f"got {type(connection).__name__}"
        )
    if not connection.in_transaction():
        raise InvalidOptionError(
            f"{where}: connection is not inside a transaction, so the job would be "
            "committed on its own; begin one first (with engine.begin() as connection: ...)"
        )
    check_same_database(where, "connection", connection.engine.url, engine.url)


def check_same_database(where: str, option: str, theirs: sa.URL, ours: sa.URL) -> None:
    """Refuse a connection to another database than the store's (its job would be lost)."""
    if _identity(theirs) != _identity(ours):
        raise InvalidOptionError(
            f"{where}: {option} belongs to "
            f"{theirs.render_as_string(hide_password=True)!r}, not to the store's database "
            f"{ours.render_as_string(hide_password=True)!r}; pass a connection of the "
            "store's engine (store.engine)"
        )


def _identity(url: sa.URL) -> tuple[Any, ...]:
    backend = url.get_backend_name()
    if backend == "sqlite":
        return (backend, os.path.realpath(url.database or ""))
    return (backend, url.host or "localhost", url.port or 5432, url.database)


def unique_key_of(
    where: str, data: Any, unique_key: object, unique: object, option: str = "unique_key"
) -> str | None:
    """The unique key of one item: ``unique_key`` as given (checked), or with ``unique`` a
    hash of ``data`` (:func:`data_key`), or None."""
    if not isinstance(unique, bool):
        raise OptionTypeError(f"{where}: unique must be True or False, got {unique!r}")
    if unique_key is not None:
        if unique:
            raise InvalidOptionError(f"{where}: pass {option}=... or unique=True, not both")
        return check_unique_key(where, unique_key, option)
    if unique:
        check_json(data, option="data")
        return data_key(data)
    return None


def items_of(
    where: str,
    datas: Sequence[Any],
    *,
    unique: bool,
    unique_keys: object,
) -> list[Item]:
    """The items of an ``enqueue_many``: keys from ``unique_keys`` (one per item, in order;
    None: that item has none) or, with ``unique``, from the data."""
    if not isinstance(unique, bool):
        raise OptionTypeError(f"{where}: unique must be True or False, got {unique!r}")
    keys: Sequence[object]
    if unique_keys is None:
        keys = [None] * len(datas)
    elif unique:
        raise InvalidOptionError(f"{where}: pass unique_keys=[...] or unique=True, not both")
    elif isinstance(unique_keys, str | bytes) or not isinstance(unique_keys, Sequence):
        raise OptionTypeError(
            f"{where}: unique_keys must be a list of keys (str, or None for no key), one per "
            f"item in the order of items, e.g. [f\"user-{{d['user']}}\" for d in items]; "
            f"got {type(unique_keys).__name__}"
        )
    elif len(unique_keys) != len(datas):
        raise InvalidOptionError(
            f"{where}: unique_keys has {len(unique_keys)} keys for {len(datas)} items; give "
            "one key (or None) per item"
        )
    else:
        keys = unique_keys
    return [
        Item(data=data, unique_key=unique_key_of(where, data, key, unique, f"unique_keys[{i}]"))
        for i, (data, key) in enumerate(zip(datas, keys, strict=True))
    ]


def _run_after(value: datetime | timedelta | float | None) -> tuple[float | None, float]:
    """(absolute epoch seconds or None, delay after the database's now)."""
    if value is None:
        return None, 0.0
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("run_after: a datetime must be timezone-aware (e.g. UTC)")
        return value.timestamp(), 0.0
    if isinstance(value, timedelta):
        return None, value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return None, float(value)
    raise TypeError(
        "run_after must be an aware datetime, a timedelta or (finite) seconds from now, "
        f"got {type(value).__name__}"
    )
