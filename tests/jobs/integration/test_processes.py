"""Real worker processes on one database: exactly-once under contention, crash takeover,
and reconnection after the database drops every connection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _procs import stop as _stop  # the helper module next to this file

from otelkit._errors import internal_error_counts
from otelkit.jobs import Job, JobState
from otelkit.testing import wait_until

APP = Path(__file__).with_name("jobapp.py")
pytestmark = pytest.mark.slow


def _env(url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, JOBAPP_URL=url, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(APP.parent), env.get("PYTHONPATH", "")])
    return env


def _app(url: str, lease: str = "30") -> Any:
    """The job module imported here (to enqueue; the lease is stored with each job)."""
    code = "import jobapp; jobapp.create_tables()"
    subprocess.run([sys.executable, "-c", code], env=_env(url), check=True, timeout=60)
    sys.path.insert(0, str(APP.parent))
    try:
        os.environ["JOBAPP_URL"] = url
        os.environ["JOBAPP_LEASE"] = lease
        import importlib

        import jobapp  # type: ignore[import-not-found]

        return importlib.reload(jobapp)
    finally:
        sys.path.remove(str(APP.parent))
        del os.environ["JOBAPP_URL"], os.environ["JOBAPP_LEASE"]


def _workers(url: str, count: int, **extra: str) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen([sys.executable, str(APP)], env=_env(url, **extra)) for _ in range(count)
    ]


def _scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar_one()


def _url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return str(request.getfixturevalue("pg_url"))


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize(
    ("backend", "processes", "jobs"),
    [
        pytest.param("postgres", 8, 5000, marks=pytest.mark.postgres, id="postgres-8x5000"),
        pytest.param("sqlite", 4, 1000, id="sqlite-4x1000"),
    ],
)
def test_every_job_runs_exactly_once(request, tmp_path, backend, processes, jobs) -> None:
    url = _url(backend, request, tmp_path)
    app = _app(url)
    for start in range(0, jobs, 1000):
        app.record.enqueue_many(range(start, min(jobs, start + 1000)))
    engine = app.store.engine
    procs = _workers(url, processes)
    try:
        wait_until(
            lambda: (
                _scalar(engine, "SELECT count(*) FROM otelkit_jobs WHERE status = 'succeeded'")
                == jobs
            ),
            timeout=120,
            interval=0.25,
        )
    finally:
        codes = _stop(procs)
    assert codes == [0] * processes  # SIGTERM: graceful stop
    with engine.connect() as conn:
        runs = Counter(r.job_id for r in conn.execute(sa.select(app.executions.c.job_id)))
        pids = set(conn.execute(sa.select(app.executions.c.pid).distinct()).scalars())
        attempts = conn.exec_driver_sql("SELECT max(attempt) FROM otelkit_jobs").scalar_one()
    assert len(runs) == jobs and set(runs.values()) == {1}  # each job ran exactly once
    assert attempts == 1
    assert len(pids) > 1  # the work really was shared
    app.store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkilled_worker_is_taken_over_after_its_lease(request, tmp_path, backend) -> None:
    url = _url(backend, request, tmp_path)
    app = _app(url, lease="1.0")
    jid = app.record.enqueue("hang")
    engine = app.store.engine
    [victim] = _workers(url, 1)
    try:
        wait_until(lambda: _scalar(engine, "SELECT count(*) FROM executions") == 1, timeout=30)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL
        assert app.store.get(jid).state is JobState.RUNNING  # stranded until the lease expires
        rescuers = _workers(url, 1)
        try:
            wait_until(lambda: app.store.get(jid).state is JobState.SUCCEEDED, timeout=30)
        finally:
            assert _stop(rescuers) == [0]
    finally:
        if victim.poll() is None:
            victim.kill()
    job = app.store.get(jid)
    assert job.attempt == 2
    assert [e.type for e in job.errors] == ["otelkit.jobs.LeaseExpired"]
    with engine.connect() as conn:
        ran = conn.execute(sa.select(app.executions.c.attempt, app.executions.c.pid)).all()
    assert [a for a, _ in ran] == [1, 2] and ran[0][1] == victim.pid != ran[1][1]
    history = [(t.from_state, t.to_state, t.attempt) for t in app.store.transitions(jid)]
    assert history[-2:] == [("running", "running", 2), ("running", "succeeded", 2)]
    app.store.close()


@pytest.mark.postgres
def test_worker_survives_the_database_dropping_every_connection(pg_url, make_store) -> None:
    store = make_store(pg_url)
    ran: list[str] = []
    lock = threading.Lock()

    @store.job(name="n")
    def n(job: Job) -> None:
        with lock:
            ran.append(job.id)

    ids = n.enqueue_many(range(600))
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    kill = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    before = sum(internal_error_counts().get(k, 0) for k in ("jobs.cycle",))
    worker = store.worker(concurrency=2, batch=5, poll_interval=0.05)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    killed = 0
    try:
        for _ in range(8):  # drop every connection, then let it make progress, repeat
            with admin.connect() as conn:
                killed += conn.exec_driver_sql(kill).scalar_one()
            target = min(len(ran) + 50, len(ids))
            wait_until(lambda t=target: len(ran) >= t, timeout=30)
        wait_until(
            lambda: (
                _scalar(admin, "SELECT count(*) FROM otelkit_jobs WHERE status='succeeded'")
                == len(ids)
            ),
            timeout=60,
        )
    finally:
        worker.stop()
        thread.join(30)
        admin.dispose()
    assert killed > 0
    after = sum(internal_error_counts().get(k, 0) for k in ("jobs.cycle",))
    assert after > before  # the worker did meet dead connections, and carried on
    assert Counter(ran) == Counter(ids)  # nothing lost, nothing run twice
