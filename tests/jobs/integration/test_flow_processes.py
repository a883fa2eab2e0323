"""Flow limits across real worker processes (4 processes x 4 threads), on both databases:
the bound read from the database at every moment, fairness behind a backlog, a rate under
concurrent claims, and a limit changed while the workers run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _procs import stop as _stop  # the helper module next to this file

from otelkit.jobs import Limits
from otelkit.testing import wait_until

APP = Path(__file__).with_name("flowapp.py")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
pytestmark = pytest.mark.slow


def _env(url: str, limits: dict[str, Any] | None) -> dict[str, str]:
    env = dict(os.environ, FLOWAPP_URL=url, FLOWAPP_LIMITS=json.dumps(limits))
    env["PYTHONPATH"] = os.pathsep.join([str(APP.parent), env.get("PYTHONPATH", "")])
    return env


def _app(url: str, limits: dict[str, Any] | None) -> Any:
    """The job module imported here (to enqueue), with the schema made."""
    sys.path.insert(0, str(APP.parent))
    saved = {k: os.environ.get(k) for k in ("FLOWAPP_URL", "FLOWAPP_LIMITS")}
    try:
        os.environ.update(FLOWAPP_URL=url, FLOWAPP_LIMITS=json.dumps(limits))
        import importlib

        import flowapp  # type: ignore[import-not-found]

        app = importlib.reload(flowapp)
        app.store.create_schema()
        return app
    finally:
        sys.path.remove(str(APP.parent))
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _workers(url: str, limits: dict[str, Any] | None, count: int = 4) -> list[Any]:
    return [
        subprocess.Popen([sys.executable, str(APP)], env=_env(url, limits)) for _ in range(count)
    ]


def _url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return str(request.getfixturevalue("pg_url"))


def _scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar_one()


class Sampler:
    """Reads the running jobs from the database every few milliseconds in a thread: the
    most seen at once in the queue, and for one key."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self.most = 0
        self.most_per_key = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sql = (
            "SELECT limit_key, count(*) FROM otelkit_jobs WHERE status = 'running' "
            "AND queue = 'flow' GROUP BY limit_key"
        )
        with self._engine.connect() as conn:
            while not self._stop.wait(0.003):
                rows = conn.exec_driver_sql(sql).all()
                conn.rollback()  # a new snapshot for every sample
                self.most = max(self.most, sum(n for _, n in rows))
                self.most_per_key = max([self.most_per_key, *(n for k, n in rows if k)])
                self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _all_succeeded(engine: sa.Engine, total: int) -> Callable[[], bool]:
    sql = "SELECT count(*) FROM otelkit_jobs WHERE status = 'succeeded'"
    return lambda: _scalar(engine, sql) == total


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_queue_limit_of_3_holds_across_4_processes_of_4_threads(
    request, tmp_path, backend
) -> None:
    url = _url(backend, request, tmp_path)
    limits = {"concurrency": 3}  # declared in code: each worker's start stores it
    app = _app(url, limits)
    app.step.enqueue_many([{"ms": 20}] * 150)
    engine = app.store.engine
    sampler = Sampler(engine)
    procs = _workers(url, limits)
    try:
        wait_until(_all_succeeded(engine, 150), timeout=120, interval=0.1)
    finally:
        sampler.stop()
        codes = _stop(procs)
    assert codes == [0] * 4
    assert sampler.samples > 50
    assert sampler.most == 3  # reached, never passed
    app.store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_key_limit_holds_and_small_keys_start_before_a_tenth_of_the_backlog(
    request, tmp_path, backend
) -> None:
    url = _url(backend, request, tmp_path)
    limits = {"key_concurrency": 1}
    app = _app(url, limits)
    app.step.enqueue_many([{"key": "A", "ms": 2}] * 1000)
    small = app.step.enqueue_many([{"key": k, "ms": 2} for k in "BC" for _ in range(10)])
    engine = app.store.engine
    sampler = Sampler(engine)
    procs = _workers(url, limits)
    ids = ", ".join(f"'{i}'" for i in small)
    try:
        wait_until(
            lambda: (
                _scalar(
                    engine,
                    f"SELECT count(*) FROM otelkit_jobs WHERE id IN ({ids}) AND status = 'succeeded'",
                )
                == 20
            ),
            timeout=120,
            interval=0.05,
        )
    finally:
        sampler.stop()
        codes = _stop(procs)
    assert codes == [0] * 4
    assert sampler.most_per_key == 1  # per key, across every process
    with engine.connect() as conn:
        last_small_start = conn.exec_driver_sql(
            "SELECT max(at) FROM otelkit_job_transitions "
            f"WHERE to_status = 'running' AND job_id IN ({ids})"
        ).scalar_one()
        backlog_done = conn.exec_driver_sql(
            "SELECT count(*) FROM otelkit_job_transitions t JOIN otelkit_jobs j ON j.id = t.job_id "
            f"WHERE j.limit_key = 'A' AND t.to_status = 'succeeded' AND t.at <= {last_small_start!r}"
        ).scalar_one()
    assert backlog_done < 100, backlog_done  # B and C did not wait for A's backlog
    app.store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rate_of_20_per_second_holds_under_concurrent_claims(request, tmp_path, backend) -> None:
    url = _url(backend, request, tmp_path)
    limits = {"rate": [20, 1.0]}
    app = _app(url, limits)
    app.step.enqueue_many([{"ms": 0}] * 200)
    engine = app.store.engine
    procs = _workers(url, limits)
    try:
        wait_until(_all_succeeded(engine, 200), timeout=120, interval=0.1)
    finally:
        codes = _stop(procs)
    assert codes == [0] * 4
    with engine.connect() as conn:
        starts = sorted(
            conn.exec_driver_sql(
                "SELECT at FROM otelkit_job_transitions WHERE to_status = 'running'"
            ).scalars()
        )
    assert len(starts) == 200
    # every one-second window on the database clock, [t, t + 1), starting at each start
    busiest = max(sum(1 for u in starts[i:] if u - t < 1.0) for i, t in enumerate(starts))
    assert busiest == 20  # reached, never passed
    assert starts[-1] - starts[0] >= 9.0  # 200 starts at 20 per second
    app.store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_limit_changed_while_workers_run_binds_at_their_next_claim(
    request, tmp_path, backend
) -> None:
    url = _url(backend, request, tmp_path)
    app = _app(url, None)
    app.step.enqueue_many([{"ms": 30}] * 400)
    engine = app.store.engine
    app.store.set_limits("flow", Limits(concurrency=1))
    running = "SELECT count(*) FROM otelkit_jobs WHERE status = 'running'"
    succeeded = "SELECT count(*) FROM otelkit_jobs WHERE status = 'succeeded'"
    procs = _workers(url, None, count=2)
    try:
        wait_until(lambda: _scalar(engine, succeeded) >= 5, timeout=60, interval=0.02)
        sampler = Sampler(engine)
        target = _scalar(engine, succeeded) + 10
        wait_until(lambda: _scalar(engine, succeeded) >= target, timeout=60, interval=0.02)
        sampler.stop()
        assert sampler.most == 1
        app.store.set_limits("flow", Limits(concurrency=4))  # raised: workers take more
        wait_until(lambda: _scalar(engine, running) == 4, timeout=30, interval=0.005)
        app.store.set_limits("flow", Limits(concurrency=2))  # lowered: no claim above it
        wait_until(lambda: _scalar(engine, running) <= 2, timeout=30, interval=0.005)
        sampler = Sampler(engine)
        target = _scalar(engine, succeeded) + 10
        wait_until(lambda: _scalar(engine, succeeded) >= target, timeout=60, interval=0.02)
        sampler.stop()
        assert sampler.most == 2
    finally:
        codes = _stop(procs)
    assert codes == [0, 0]
    app.store.close()
