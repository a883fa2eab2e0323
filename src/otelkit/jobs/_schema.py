"""Tables, indexes and the transition-history triggers; the database clock expression.

Times are stored as epoch seconds (double precision) read from the database clock
(:class:`db_now`), so every worker compares leases against one clock and the SQL stays
the same on SQLite and PostgreSQL. The history table is filled by triggers: every change of
``status`` or ``attempt`` — from a worker, the CLI or hand-written SQL — leaves a row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from otelkit.jobs._model import SchemaMissingError
from otelkit.jobs._wakeup import CHANNEL

__all__ = [
    "FLOW_CLAIM",
    "JSON",
    "LIMITED_SQL",
    "RUNNING_INDEX",
    "RUNNING_SQL",
    "UNIQUE_INDEX",
    "UNIQUE_SQL",
    "WAITING_SQL",
    "WHILE_ACTIVE",
    "create_schema",
    "db_now",
    "dialect_insert",
    "drop_schema",
    "has_schema",
    "history",
    "jobs",
    "locks",
    "metadata",
    "missing_schema",
    "queues",
    "require_schema",
    "schedules",
    "starts",
]

# Literal predicates (not bound parameters) so both planners can match the partial indexes.
WAITING_SQL = "status IN ('queued', 'retrying')"
RUNNING_SQL = "status = 'running'"
LIMITED_SQL = "limited"
"""A queue settings row whose queue has flow limits: its jobs are claimed by the limited
claim only (see :mod:`otelkit.jobs._flow`)."""
# Rows whose unique key blocks another enqueue: any job still to run, and, for a key held for
# a period (unique_period >= 0: the period's start), a job of that period that succeeded.
UNIQUE_SQL = (
    "unique_key IS NOT NULL AND (status IN ('queued', 'retrying', 'running') "
    "OR (status = 'succeeded' AND unique_period >= 0))"
)
WHILE_ACTIVE = -1.0
"""``unique_period`` of a key held only while its job waits or runs."""

metadata = sa.MetaData()
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_ID = sa.String(200)

jobs = sa.Table(
    "otelkit_jobs",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("queue", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("claimed_from", sa.String(16)),
    sa.Column("data", JSON),
    sa.Column("result", JSON),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("lease_seconds", sa.Double, nullable=False),
    sa.Column("run_after", sa.Double, nullable=False),
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_expires", sa.Double),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("finished_at", sa.Double),
    sa.Column("trace_context", JSON),
    sa.Column("errors", JSON, nullable=False),
    sa.Column("last_error", sa.Text),
    # periodic jobs (added in 0.x: create_schema() adds them to an older database)
    sa.Column("schedule", sa.String(200)),
    sa.Column("period_start", sa.Double),
    # unique jobs: the key (per job name) and the start of its period (WHILE_ACTIVE: none)
    sa.Column("unique_key", sa.String(200)),
    sa.Column("unique_period", sa.Double),
    # flow control: the key that per-key limits and fair claims group jobs by
    sa.Column("limit_key", sa.String(200)),
    sa.Index("ix_otelkit_jobs_listing", "status", "updated_at"),
    # one job per (schedule, period): what makes a period run exactly once, across machines
    sa.Index("ux_otelkit_jobs_period", "schedule", "period_start", unique=True),
)
_ADDED_COLUMNS = (
    ("schedule", "VARCHAR(200)"),
    ("period_start", "DOUBLE PRECISION"),
    ("unique_key", "VARCHAR(200)"),
    ("unique_period", "DOUBLE PRECISION"),
    ("limit_key", "VARCHAR(200)"),
)

queues = sa.Table(
    "otelkit_job_queues",
    metadata,
    sa.Column("queue", sa.String(200), primary_key=True),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    # flow limits (see otelkit.jobs._flow); ``limited`` is true when any is set
    sa.Column("limited", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("concurrency", sa.Integer),
    sa.Column("key_concurrency", sa.Integer),
    sa.Column("rate_limit", sa.Integer),
    sa.Column("rate_period", sa.Double),
    sa.Column("key_rate_limit", sa.Integer),
    sa.Column("key_rate_period", sa.Double),
    sa.Column("fair", sa.Boolean),
    sa.Column("limits_set_by", sa.String(16)),
    sa.Column("limits_updated_at", sa.Double),
    sa.Column("throttled_at", sa.Double),
    sa.Column("throttled_reason", sa.String(32)),
)
"""Queue settings: a paused queue's jobs are not claimed (no row: not paused), and its
flow limits (no row, or ``limited`` false: none)."""
_ADDED_QUEUE_COLUMNS = (
    ("limited", "BOOLEAN NOT NULL DEFAULT false"),
    ("concurrency", "INTEGER"),
    ("key_concurrency", "INTEGER"),
    ("rate_limit", "INTEGER"),
    ("rate_period", "DOUBLE PRECISION"),
    ("key_rate_limit", "INTEGER"),
    ("key_rate_period", "DOUBLE PRECISION"),
    ("fair", "BOOLEAN"),
    ("limits_set_by", "VARCHAR(16)"),
    ("limits_updated_at", "DOUBLE PRECISION"),
    ("throttled_at", "DOUBLE PRECISION"),
    ("throttled_reason", "VARCHAR(32)"),
)

starts = sa.Table(
    "otelkit_job_starts",
    metadata,
    sa.Column("queue", sa.String(200), nullable=False),
    sa.Column("limit_key", sa.String(200)),
    sa.Column("at", sa.Double, nullable=False),
    sa.Index("ix_otelkit_job_starts", "queue", "at"),
)
"""The starts of rate-limited queues within their window (a sliding-window log; rows
older than the longest period are deleted by the claim that writes new ones)."""

locks = sa.Table(
    "otelkit_job_locks",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(200)),
    sa.Column("expires", sa.Double, nullable=False),
)
"""Leased locks of maintenance tasks (``prune``: one pruner at a time across workers)."""

schedules = sa.Table(
    "otelkit_job_schedules",
    metadata,
    sa.Column("name", _ID, primary_key=True),
    sa.Column("queue", sa.String(200), nullable=False),
    sa.Column("spec", sa.String(300), nullable=False),
    sa.Column("catch_up", sa.String(16), nullable=False),
    sa.Column("last_period", sa.Double),
    sa.Column("updated_at", sa.Double, nullable=False),
)
# The claim reads waiting jobs of a queue in priority order, and running jobs by lease expiry.
sa.Index(
    "ix_otelkit_jobs_ready",
    jobs.c.queue,
    jobs.c.priority.desc(),
    jobs.c.run_after,
    jobs.c.id,
    postgresql_where=sa.text(WAITING_SQL),
    sqlite_where=sa.text(WAITING_SQL),
)
# Race-safe unique jobs: the INSERT ... ON CONFLICT of an enqueue names this index.
UNIQUE_INDEX = sa.Index(
    "ux_otelkit_jobs_unique",
    jobs.c.name,
    jobs.c.unique_key,
    jobs.c.unique_period,
    unique=True,
    postgresql_where=sa.text(UNIQUE_SQL),
    sqlite_where=sa.text(UNIQUE_SQL),
)
# The limited claim counts running jobs per queue and key.
RUNNING_INDEX = sa.Index(
    "ix_otelkit_jobs_running",
    jobs.c.queue,
    jobs.c.limit_key,
    postgresql_where=sa.text(RUNNING_SQL),
    sqlite_where=sa.text(RUNNING_SQL),
)
sa.Index(
    "ix_otelkit_jobs_lease",
    jobs.c.lease_expires,
    postgresql_where=sa.text(RUNNING_SQL),
    sqlite_where=sa.text(RUNNING_SQL),
)

history = sa.Table(
    "otelkit_job_transitions",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("job_id", _ID, nullable=False, index=True),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(200)),
    sa.Column("error", sa.Text),
)


class db_now(FunctionElement[float]):
    """The database's current time in epoch seconds."""

    type = sa.Double()
    inherit_cache = True


@compiles(db_now)
def _db_now_default(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    raise sa.exc.CompileError("otelkit.jobs supports SQLite and PostgreSQL only")


@compiles(db_now, "postgresql")
def _db_now_pg(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


_COLUMNS = "job_id, from_status, to_status, at, attempt, worker, error"
_ERROR = "CASE WHEN n.status IN ('retrying', 'failed') THEN n.last_error END"

_SQLITE_DDL = (
    f"""CREATE TRIGGER IF NOT EXISTS otelkit_jobs_history_insert AFTER INSERT ON otelkit_jobs
    BEGIN
      INSERT INTO otelkit_job_transitions ({_COLUMNS})
      VALUES (NEW.id, NULL, NEW.status, NEW.updated_at, NEW.attempt, NULL, NULL);
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS otelkit_jobs_history_update
    AFTER UPDATE OF status, attempt ON otelkit_jobs
    WHEN NEW.status IS NOT OLD.status OR NEW.attempt IS NOT OLD.attempt
    BEGIN
      INSERT INTO otelkit_job_transitions ({_COLUMNS})
      VALUES (NEW.id, OLD.status, NEW.status, NEW.updated_at, NEW.attempt, NEW.lease_owner,
              CASE WHEN NEW.status IN ('retrying', 'failed') THEN NEW.last_error END);
    END""",
)

_HELD_RECENTLY = 60.0
"""Seconds after a claim was held back by a flow limit during which a freed slot notifies."""

# Rows that became waiting wake listening workers (see otelkit.jobs._wakeup): one
# notification per queue and statement, "<queue> <seconds until the earliest is due>".
_NOTIFY = (
    f"PERFORM pg_notify('{CHANNEL}', n.queue || ' ' || "
    "(min(n.run_after) - EXTRACT(EPOCH FROM statement_timestamp()))::text)"
)

KEYED_READY_INDEX = "ix_otelkit_jobs_keyed_ready"
FLOW_CLAIM = "otelkit_jobs_flow_claim"
"""PostgreSQL: the limited claim as one server-side call (see :mod:`otelkit.jobs._flow`)."""

# Lock, count and claim in one call: in autocommit mode it holds the lock of a queue's
# settings row only while the server executes it (called at the end of a worker's
# transaction, until that commits), never across round trips between the lock and the
# claim. Each statement of a volatile function reads a fresh snapshot, so the counts after
# the lock see everything the lock's previous holder committed. Yields each locked settings
# row as it was before this claim, then the jobs claimed from that queue; ``room`` is
# shared by the queues, in lock order.
FLOW_CLAIM_DDL = f"""CREATE OR REPLACE FUNCTION {FLOW_CLAIM}(
      queue_names text[], claimer text, room integer)
    RETURNS TABLE (settings jsonb, job otelkit_jobs)
    LANGUAGE plpgsql
    AS $$
    DECLARE
      lim otelkit_job_queues;
      now_ double precision;
      take integer;
      picked text[];
      picked_status text[];
      n integer;
    BEGIN
      FOR lim IN
        SELECT * FROM otelkit_job_queues s
        WHERE s.queue = ANY (queue_names) AND s.limited AND NOT s.paused
        ORDER BY s.queue  -- one order for every worker: no deadlock between two locks
        FOR UPDATE
      LOOP
        settings := to_jsonb(lim);
        job := NULL;
        RETURN NEXT;
        -- the time of the claim is read after the lock (not the call's statement time,
        -- taken before a wait for it): the claims of a queue are stamped in lock order,
        -- so a rate window counted by one claim holds every earlier claim it must count
        now_ := EXTRACT(EPOCH FROM clock_timestamp());
        -- the room the queue's limits leave (NULL: no such limit)
        take := greatest(0, least(
          room,
          lim.concurrency - (SELECT count(*) FROM otelkit_jobs r
                             WHERE r.queue = lim.queue AND r.{RUNNING_SQL}),
          lim.rate_limit - (SELECT count(*) FROM otelkit_job_starts s
                            WHERE s.queue = lim.queue AND s.at > now_ - lim.rate_period)));
        CONTINUE WHEN take = 0;
        IF lim.fair OR lim.key_concurrency IS NOT NULL OR lim.key_rate_limit IS NOT NULL THEN
          -- the first job of every key before the second of any, skipping keys at a limit.
          -- A key gives at most the claim's room, so each key's first `take` ready jobs are
          -- all that is ranked: the keys are found by stepping through the keyed index
          -- from one key to the next, not by reading every ready job of the queue.
          SELECT array_agg(chosen.id), array_agg(chosen.status) INTO picked, picked_status FROM (
            SELECT r.id, r.status FROM (
              -- (every ORDER BY leads with the key, constant where it is compared, so that
              -- only the keyed index gives the order without a sort of the whole queue)
              WITH RECURSIVE keys(k) AS (
                SELECT (SELECT j.limit_key FROM otelkit_jobs j
                        WHERE j.queue = lim.queue AND j.{WAITING_SQL} AND j.limit_key IS NOT NULL
                        ORDER BY j.limit_key LIMIT 1)
                UNION ALL
                SELECT (SELECT j.limit_key FROM otelkit_jobs j
                        WHERE j.queue = lim.queue AND j.{WAITING_SQL} AND j.limit_key > keys.k
                        ORDER BY j.limit_key LIMIT 1)
                FROM keys WHERE keys.k IS NOT NULL
              )
              SELECT f.*, row_number() OVER (
                PARTITION BY f.limit_key ORDER BY f.priority DESC, f.run_after, f.id) AS rn
              FROM (
                SELECT head.* FROM keys CROSS JOIN LATERAL (
                  SELECT j.id, j.status, j.priority, j.run_after, j.limit_key
                  FROM otelkit_jobs j
                  WHERE j.queue = lim.queue AND j.{WAITING_SQL} AND j.limit_key = keys.k
                    AND j.run_after <= now_
                  ORDER BY j.limit_key, j.priority DESC, j.run_after, j.id
                  LIMIT take
                ) head
                UNION ALL
                (SELECT j.id, j.status, j.priority, j.run_after, j.limit_key  -- no key
                 FROM otelkit_jobs j
                 WHERE j.queue = lim.queue AND j.{WAITING_SQL} AND j.limit_key IS NULL
                   AND j.run_after <= now_
                 ORDER BY j.limit_key, j.priority DESC, j.run_after, j.id
                 LIMIT take)
              ) f
            ) r
            LEFT JOIN (
              SELECT j.limit_key, count(*) AS n FROM otelkit_jobs j
              WHERE j.queue = lim.queue AND j.{RUNNING_SQL} GROUP BY j.limit_key
            ) busy ON busy.limit_key = r.limit_key
            LEFT JOIN (
              SELECT s.limit_key, count(*) AS n FROM otelkit_job_starts s
              WHERE s.queue = lim.queue AND s.at > now_ - lim.key_rate_period
              GROUP BY s.limit_key
            ) recent ON recent.limit_key = r.limit_key
            WHERE r.limit_key IS NULL OR (
              (lim.key_concurrency IS NULL OR r.rn + coalesce(busy.n, 0) <= lim.key_concurrency)
              AND (lim.key_rate_limit IS NULL
                   OR r.rn + coalesce(recent.n, 0) <= lim.key_rate_limit))
            ORDER BY r.priority DESC, r.rn, r.run_after, r.id
            LIMIT take
          ) chosen;
        ELSE
          SELECT array_agg(chosen.id), array_agg(chosen.status) INTO picked, picked_status FROM (
            SELECT j.id, j.status FROM otelkit_jobs j
            WHERE j.queue = lim.queue AND j.{WAITING_SQL} AND j.run_after <= now_
            ORDER BY j.priority DESC, j.run_after, j.id
            LIMIT take
          ) chosen;
        END IF;
        RETURN QUERY
        WITH claimed AS (
          UPDATE otelkit_jobs j
          SET status = 'running', claimed_from = j.status, attempt = j.attempt + 1,
              lease_owner = claimer, lease_expires = now_ + j.lease_seconds, updated_at = now_
          -- each job looked up by its key and still in the status it was picked in (a
          -- run-now claim or a cancel in between leaves it out). The status is compared
          -- with IS NOT DISTINCT FROM, which no index serves: with statistics that lag a
          -- fresh backlog, an indexable status condition (or "j.id = ANY (picked)" beside
          -- the ready statuses) let the planner scan every ready job of the queue instead
          FROM unnest(picked, picked_status) AS p(id, status)
          WHERE j.id = p.id AND j.status IS NOT DISTINCT FROM p.status
          RETURNING j AS claimed_job
        ), logged AS (  -- the sliding-window log of a rate-limited queue
          INSERT INTO otelkit_job_starts (queue, limit_key, at)
          SELECT lim.queue, (c.claimed_job).limit_key, now_ FROM claimed c
          WHERE lim.rate_limit IS NOT NULL OR lim.key_rate_limit IS NOT NULL
        )
        SELECT NULL::jsonb, c.claimed_job FROM claimed c;
        GET DIAGNOSTICS n = ROW_COUNT;
        room := room - n;
        IF n > 0 AND (lim.rate_limit IS NOT NULL OR lim.key_rate_limit IS NOT NULL) THEN
          DELETE FROM otelkit_job_starts s  -- starts older than the longest period
          WHERE s.queue = lim.queue AND s.at <= now_ - greatest(lim.rate_period, lim.key_rate_period);
        END IF;
      END LOOP;
    END $$"""

# Statement-level triggers with transition tables: one INSERT ... SELECT per statement,
# so a batch claim or a batch completion costs one history insert, not one per row.
_PG_DDL = (
    "SELECT pg_advisory_xact_lock(7418305521)",  # concurrent create_schema() calls queue up
    f"""CREATE OR REPLACE FUNCTION otelkit_jobs_history_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO otelkit_job_transitions ({_COLUMNS})
      SELECT n.id, NULL, n.status, n.updated_at, n.attempt, NULL, NULL FROM new_rows n;
      {_NOTIFY} FROM new_rows n WHERE n.status IN ('queued', 'retrying') GROUP BY n.queue;
      RETURN NULL;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION otelkit_jobs_history_update() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO otelkit_job_transitions ({_COLUMNS})
      SELECT n.id, o.status, n.status, n.updated_at, n.attempt, n.lease_owner, {_ERROR}
      FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE n.status IS DISTINCT FROM o.status OR n.attempt IS DISTINCT FROM o.attempt;
      {_NOTIFY} FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE n.status IN ('queued', 'retrying')
        AND (n.status IS DISTINCT FROM o.status OR n.run_after IS DISTINCT FROM o.run_after)
      GROUP BY n.queue;
      -- a slot of a flow-limited queue freed: wake the workers it holds back. Only where a
      -- claim was held back in the last minute (a held worker's every poll renews that):
      -- a NOTIFY serialises commits, which a limit that never binds must not cost.
      IF EXISTS (SELECT 1 FROM otelkit_job_queues WHERE limited AND throttled_at IS NOT NULL)
      THEN
        PERFORM pg_notify('{CHANNEL}', n.queue || ' 0')
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE o.status = 'running' AND n.status <> 'running'
          AND EXISTS (
            SELECT 1 FROM otelkit_job_queues q
            WHERE q.queue = n.queue AND q.limited
              AND q.throttled_at > EXTRACT(EPOCH FROM statement_timestamp()) - {_HELD_RECENTLY}
          )
        GROUP BY n.queue;
      END IF;
      RETURN NULL;
    END $$""",
    # The keyed claim's index: each key's ready jobs in claim order (PostgreSQL only: the
    # SQLite claim ranks every ready job, fine at one machine's scale).
    f"CREATE INDEX IF NOT EXISTS {KEYED_READY_INDEX} ON otelkit_jobs "
    f"(queue, limit_key, priority DESC, run_after, id) WHERE {WAITING_SQL}",
    FLOW_CLAIM_DDL,
    "DROP TRIGGER IF EXISTS otelkit_jobs_history_insert ON otelkit_jobs",
    """CREATE TRIGGER otelkit_jobs_history_insert AFTER INSERT ON otelkit_jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION otelkit_jobs_history_insert()""",
    "DROP TRIGGER IF EXISTS otelkit_jobs_history_update ON otelkit_jobs",
    """CREATE TRIGGER otelkit_jobs_history_update AFTER UPDATE ON otelkit_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION otelkit_jobs_history_update()""",
)


def create_schema(engine: sa.Engine) -> None:
    """Create the tables, indexes and triggers if missing (idempotent, one transaction)."""
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.exec_driver_sql(_PG_DDL[0])
        metadata.create_all(conn, checkfirst=True)
        _migrate(conn)
        for ddl in _PG_DDL[1:] if postgres else _SQLITE_DDL:
            conn.exec_driver_sql(ddl)


def _migrate(conn: sa.Connection) -> None:
    """Bring a jobs table made by an earlier release up to date (idempotent): add the
    columns and indexes it lacks. New tables come from ``create_all``."""
    inspector = sa.inspect(conn)
    for table, added in ((jobs, _ADDED_COLUMNS), (queues, _ADDED_QUEUE_COLUMNS)):
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column, ddl_type in added:
            if column not in present:
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column} {ddl_type}")
    conn.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS {RUNNING_INDEX.name} ON {jobs.name} (queue, limit_key) "
        f"WHERE {RUNNING_SQL}"
    )
    conn.exec_driver_sql(
        f"CREATE UNIQUE INDEX IF NOT EXISTS ux_otelkit_jobs_period "
        f"ON {jobs.name} (schedule, period_start)"
    )
    conn.exec_driver_sql(
        f"CREATE UNIQUE INDEX IF NOT EXISTS {UNIQUE_INDEX.name} "
        f"ON {jobs.name} (name, unique_key, unique_period) WHERE {UNIQUE_SQL}"
    )


def drop_schema(engine: sa.Engine) -> None:
    """Drop the tables, triggers and trigger functions (the demo's clean-up)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # it returns rows of the jobs table
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {FLOW_CLAIM}")
        metadata.drop_all(conn, checkfirst=True)
        if engine.dialect.name == "postgresql":
            for function in ("otelkit_jobs_history_insert", "otelkit_jobs_history_update"):
                conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}()")


def has_schema(engine: sa.Engine) -> bool:
    """Whether the job tables of this release exist (the starts table came last), and on
    PostgreSQL the claim function."""
    inspector = sa.inspect(engine)
    if not all(inspector.has_table(t.name) for t in (jobs, schedules, queues, starts)):
        return False
    if engine.dialect.name != "postgresql":
        return True
    with engine.connect() as conn:
        found = conn.execute(sa.select(sa.func.to_regproc(FLOW_CLAIM))).scalar()
    return found is not None


@contextlib.contextmanager
def require_schema(engine: sa.Engine) -> Iterator[None]:
    """Turn a database error caused by missing job tables into :class:`SchemaMissingError`.

    The check runs only after an error, so the normal path costs nothing.
    """
    try:
        yield
    except sa.exc.DBAPIError as exc:
        try:
            missing = not has_schema(engine)
        except Exception:  # noqa: BLE001 - the database is away: the original error says more
            missing = False
        if missing:
            raise missing_schema(engine) from exc
        raise


def missing_schema(engine: sa.Engine) -> SchemaMissingError:
    """The error for a store whose database has no job tables."""
    where = engine.url.render_as_string(hide_password=True)
    return SchemaMissingError(
        f"JobStore: the job tables do not exist in {where} yet (or were made by an older "
        "release); call store.create_schema() "
        "once before enqueuing or querying (it is idempotent), or start "
        "`otelkit jobs worker`, which creates them"
    )


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    """``INSERT`` into ``table`` with the dialect's ``ON CONFLICT`` clauses (PostgreSQL or
    SQLite)."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)
