"""The demo on a database shared with other work: it counts, runs and removes only its own jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from otelkit._demo._jobs import DOOMED, FLAKY, ORDER, QUEUE, build_store, run_queue
from otelkit.jobs import JobState, JobStore

PG_ENV = "OTELKIT_TEST_POSTGRES_URL"


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards)."""
    raw = os.environ.get(PG_ENV)
    if not raw:
        pytest.skip(f"{PG_ENV} is not set")
    admin = sa.make_url(raw).set(drivername="postgresql+psycopg")
    name = f"otelkit_demo_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


@pytest.fixture
def foreign_jobs(fresh_pg: str) -> Iterator[tuple[JobStore, list[str]]]:
    """Another application's jobs, and an earlier demo run's leftovers in the queue "demo"."""
    store, ids = _foreign_jobs(fresh_pg)
    try:
        yield store, ids
    finally:
        store.close()


def _foreign_jobs(url: str) -> tuple[JobStore, list[str]]:
    store = JobStore(url, gauges=False)
    store.create_schema()
    billing = store.job(name="billing.invoice", queue="billing")(lambda job: None)
    leftover = store.job(name=ORDER, queue=QUEUE)(lambda job: None)
    ids = billing.enqueue_many([{"n": n} for n in range(5)])
    ids += leftover.enqueue_many([{"order": n} for n in range(3)])
    return store, ids


def _history_rows(engine: sa.Engine, job_ids: list[str]) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM otelkit_job_transitions WHERE job_id = ANY(:ids)"),
            {"ids": job_ids},
        ).scalar_one()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_run_queues_are_unique_per_run_on_a_shared_database() -> None:
    assert run_queue(shared=False) == QUEUE
    queues = {run_queue(shared=True) for _ in range(20)}
    assert len(queues) == 20 and all(q.startswith("demo-") for q in queues)


@pytest.mark.postgres
def test_a_run_counts_runs_and_removes_only_its_own_jobs(fresh_pg: str, foreign_jobs) -> None:
    foreign, foreign_ids = foreign_jobs
    jobs = build_store(fresh_pg, queue=run_queue(shared=True))
    jobs.prepare()
    assert not jobs.created_tables  # the tables were there before the run
    own = jobs.order.enqueue_many([{"order": n} for n in range(4)])
    assert jobs.counts()["queued"] == 4  # not 12: the foreign jobs are not counted

    ran = jobs.store.worker(concurrency=2, poll_interval=0.05).run_until_idle(timeout=60)

    assert ran == 4
    counts = jobs.counts()
    assert counts["succeeded"] == 4 and sum(counts.values()) == 4
    untouched = [foreign.get(i) for i in foreign_ids]
    assert all(j.state is JobState.QUEUED and j.attempt == 0 for j in untouched)
    jobs.cleanup()
    assert all(foreign.get(i) is None for i in own)
    assert _history_rows(foreign.engine, own) == 0
    assert [foreign.get(i).state for i in foreign_ids] == [JobState.QUEUED] * 8
    assert _history_rows(foreign.engine, foreign_ids) == 8  # their "queued" rows stay


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_cleanup_drops_the_tables_only_when_the_run_created_them(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'demo.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("fresh_pg")
    )
    jobs = build_store(url, queue=run_queue(shared=True))
    jobs.prepare()
    assert jobs.created_tables
    jobs.doomed.enqueue({"card": "4000"})
    jobs.cleanup()
    assert not {"otelkit_jobs", "otelkit_job_transitions"} & _tables(url)
    if backend == "postgres":
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            functions = conn.execute(
                sa.text("SELECT count(*) FROM pg_proc WHERE proname LIKE :names"),
                {"names": "otelkit_jobs_history_%"},
            ).scalar_one()
        engine.dispose()
        assert functions == 0


def test_cleanup_keeps_tables_it_created_once_others_use_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    jobs = build_store(url, queue=run_queue(shared=True))
    jobs.prepare()
    other = JobStore(url, gauges=False)
    kept = other.job(name="app.report", queue="reports")(lambda job: None).enqueue()
    jobs.cleanup()
    assert other.get(kept) is not None
    other.close()


@pytest.mark.postgres
def test_otelkit_demo_on_a_shared_postgres_counts_only_its_own_jobs(
    fresh_pg: str, foreign_jobs
) -> None:
    foreign, foreign_ids = foreign_jobs
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELKIT_RELAY")}
    result = subprocess.run(
        [sys.executable, "-m", "otelkit", "demo", "--db", fresh_pg, "--workers", "1",
         "--endpoint", "none", "--duration", "30"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "jobs by final state  failed 1, succeeded 41" in result.stdout
    assert [foreign.get(i).state for i in foreign_ids] == [JobState.QUEUED] * 8
    with foreign.engine.connect() as conn:
        names = conn.execute(sa.text("SELECT DISTINCT queue FROM otelkit_jobs ORDER BY queue"))
        assert list(names.scalars()) == ["billing", "demo"]  # the run's own queue is gone
    assert {ORDER, FLAKY, DOOMED} >= {j.name for j in foreign.list_jobs(queue=QUEUE)}
