"""jobs_overhead: the cost of running one job with full tracking, on SQLite (report-only:
no target; it shows where a tracked job's time goes).

Ours: ``fn.run(job_id)`` — claim (fenced, leased, history row), the function, completion
(fenced, history row), a CONSUMER span and every metric (SDK providers, no-op exporters).
Baseline: the same function called bare plus the two SQL statements a minimal tracker
needs (``UPDATE ... SET status='running'`` and ``UPDATE ... SET status='succeeded'``,
each committed), on the same stack as the store and as the seed tracker: SQLAlchemy Core
on a SQLite file with the same pragmas (WAL, ``synchronous=NORMAL``). The same two
statements through the bare ``sqlite3`` module are measured and printed too (not the
ratio's baseline: they skip the SQL toolkit the issue asks the store to be built on).
Also printed: ``fn.run``'s own two transactions on the store's schema with nothing else
(no telemetry, no bookkeeping) — the database floor of a tracked job. Both run the same
number of jobs; medians of several rounds.

Environment: ``JOBS`` per round (default 2000), ``ROUNDS`` (default 5).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

JOBS = int(os.environ.get("JOBS", "2000"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))


def work(data: Any) -> int:
    """The job itself: a little real work, identical for both."""
    return sum(range(50)) + len(str(data))


def _providers() -> tuple[Any, Any]:
    from _util import noop_providers

    return noop_providers()


def ours(directory: Path, providers: tuple[Any, Any]) -> float:
    """Seconds per job for ``fn.run``."""
    from otelkit.jobs import Job, JobStore

    store = JobStore(
        directory / "ours.db", tracer_provider=providers[0], meter_provider=providers[1]
    )
    store.create_schema()

    @store.job(name="work")
    def job(job: Job) -> int:
        return work(job.data)

    ids = []
    for start in range(0, JOBS, 1000):
        ids += job.enqueue_many([{"n": i} for i in range(start, min(JOBS, start + 1000))])
    begin = time.perf_counter()
    for job_id in ids:
        job.run(job_id)
    elapsed = time.perf_counter() - begin
    store.close()
    return elapsed / JOBS


def sql_only(directory: Path) -> float:
    """Seconds per job: ``fn.run``'s two transactions alone, no telemetry, no bookkeeping.

    The store's own statements (fenced claim ``RETURNING`` the row, fenced completion) on
    its own schema (three indexes touched per transition, history rows written by
    triggers), run the way ``fn.run`` runs them (SQLAlchemy Core, ``BEGIN IMMEDIATE``):
    what the database work of a tracked job costs before any Python of ours.
    """
    from otelkit.jobs import JobState, JobStore, _claim
    from otelkit.jobs._engine import WRITE

    store = JobStore(directory / "sql.db", gauges=False)
    store.create_schema()
    job = store.job(name="work")(lambda job: None)
    ids = []
    for start in range(0, JOBS, 1000):
        ids += job.enqueue_many([{"n": i} for i in range(start, min(JOBS, start + 1000))])
    writer = store.engine.execution_options(**{WRITE: True})
    owner = "bench:run"
    begin = time.perf_counter()
    for job_id in ids:
        with writer.begin() as conn:
            row = _claim.claim_by_id(conn, owner=owner, job_id=job_id)
        assert row is not None
        work(row.data)
        done = _claim.Transition(job_id=job_id, attempt=1, to=JobState.SUCCEEDED)
        with writer.begin() as conn:
            _claim.finish(conn, owner=owner, transitions=[done])
    elapsed = time.perf_counter() - begin
    store.close()
    return elapsed / JOBS


def baseline(directory: Path) -> float:
    """Seconds per job: the bare function plus a minimal tracker's two statements (Core)."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{directory / 'core.db'}")

    @sa.event.listens_for(engine, "connect")
    def pragmas(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.execute("PRAGMA journal_mode = WAL")
        dbapi_connection.execute("PRAGMA synchronous = NORMAL")

    meta = sa.MetaData()
    jobs = sa.Table(
        "jobs",
        meta,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("data", sa.JSON),
        sa.Column("lock", sa.String),
    )
    meta.create_all(engine)
    ids = [uuid.uuid4().hex for _ in range(JOBS)]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(jobs),
            [{"id": i, "status": "queued", "data": {"n": n}} for n, i in enumerate(ids)],
        )
    claim = (
        sa.update(jobs)
        .where(jobs.c.id == sa.bindparam("job_id"), jobs.c.status == "queued")
        .values(status="running", lock=sa.bindparam("lock"))
        .returning(jobs.c.data)
    )
    done = (
        sa.update(jobs)
        .where(jobs.c.id == sa.bindparam("job_id"), jobs.c.lock == sa.bindparam("held"))
        .values(status="succeeded", lock=None)
    )
    begin = time.perf_counter()
    for job_id in ids:
        lock = uuid.uuid4().hex
        with engine.begin() as conn:
            data = conn.execute(claim, {"job_id": job_id, "lock": lock}).scalar_one()
        work(data)
        with engine.begin() as conn:
            conn.execute(done, {"job_id": job_id, "held": lock})
    elapsed = time.perf_counter() - begin
    engine.dispose()
    return elapsed / JOBS


def raw_sqlite(directory: Path) -> float:
    """Seconds per job: the bare function plus the two statements through ``sqlite3``."""
    conn = sqlite3.connect(directory / "base.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, data TEXT, lock TEXT)"
    )
    ids = [uuid.uuid4().hex for _ in range(JOBS)]
    with conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO jobs VALUES (?, 'queued', ?, NULL)",
            [(i, f'{{"n": {n}}}') for n, i in enumerate(ids)],
        )
    begin = time.perf_counter()
    for job_id in ids:
        lock = uuid.uuid4().hex
        cur = conn.execute(
            "UPDATE jobs SET status = 'running', lock = ? WHERE id = ? AND status = 'queued' "
            "RETURNING data",
            (lock, job_id),
        )
        (data,) = cur.fetchone()
        work(data)
        conn.execute(
            "UPDATE jobs SET status = 'succeeded', lock = NULL WHERE id = ? AND lock = ?",
            (job_id, lock),
        )
    elapsed = time.perf_counter() - begin
    conn.close()
    return elapsed / JOBS


def main() -> None:
    providers = _providers()
    mine: list[float] = []
    base: list[float] = []
    raw: list[float] = []
    sql: list[float] = []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as tmp:
            mine.append(ours(Path(tmp), providers))
            base.append(baseline(Path(tmp)))
            raw.append(raw_sqlite(Path(tmp)))
            sql.append(sql_only(Path(tmp)))
    a, b = statistics.median(mine) * 1e6, statistics.median(base) * 1e6
    r, q = statistics.median(raw) * 1e6, statistics.median(sql) * 1e6
    print(f"{JOBS} jobs per round, medians of {ROUNDS} rounds, SQLite file (WAL)")
    print(f"bare function + two statements via sqlite3 (no SQLAlchemy): {r:.0f} us/job")
    print(f"fn.run's two transactions alone (store schema, no telemetry): {q:.0f} us/job")
    print(f"jobs_overhead: ratio={a / b:.2f} (ours={a:.0f} us/job, baseline={b:.0f} us/job)")
    providers[0].shutdown()
    providers[1].shutdown()


if __name__ == "__main__":
    main()
