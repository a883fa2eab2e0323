"""Periodic jobs with several worker processes: every period enqueued (and run) once."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from _procs import stop  # the helper module next to this file

APP = Path(__file__).with_name("periodicapp.py")
pytestmark = pytest.mark.slow


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ, PERIODIC_URL=url)
    env["PYTHONPATH"] = os.pathsep.join([str(APP.parent), env.get("PYTHONPATH", "")])
    return env


def _periods(engine: sa.Engine, sql: str) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql(sql)]


@pytest.mark.parametrize(
    ("backend", "processes"),
    [("sqlite", 2), pytest.param("postgres", 4, marks=pytest.mark.postgres)],
)
def test_every_period_is_enqueued_exactly_once(request, tmp_path, backend, processes) -> None:
    url = (
        f"sqlite:///{tmp_path / 'jobs.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    code = "import periodicapp; periodicapp.create_tables()"
    subprocess.run([sys.executable, "-c", code], env=_env(url), check=True, timeout=60)
    engine = sa.create_engine(url)
    procs = [subprocess.Popen([sys.executable, str(APP)], env=_env(url)) for _ in range(processes)]
    enqueued_sql = "SELECT period_start FROM otelkit_jobs WHERE schedule = 'tick' ORDER BY 1"
    try:
        # Real concurrency is the point: the processes compete for at least 6 periods of a
        # 1-second schedule. Counted, not timed, so a loaded machine's slow start-up only
        # makes the test longer (bounded: a scheduler that stalls fails it).
        deadline = time.monotonic() + 120
        while len(_periods(engine, enqueued_sql)) < 6:
            assert time.monotonic() < deadline, "fewer than 6 periods enqueued in 120 s"
            time.sleep(0.2)
    finally:
        codes = stop(procs)
    assert codes == [0] * processes
    enqueued = _periods(engine, enqueued_sql)
    assert len(enqueued) >= 6, enqueued
    assert len(set(enqueued)) == len(enqueued)  # no duplicate
    gaps = [b - a for a, b in itertools.pairwise(enqueued)]
    assert gaps == [1.0] * (len(enqueued) - 1)  # no gap
    # every period ran exactly once (the last may still have been queued at SIGTERM)
    ran = _periods(engine, "SELECT period FROM scheduled_runs ORDER BY 1")
    assert len(set(ran)) == len(ran)
    starts = [datetime.fromisoformat(p.replace("Z", "+00:00")).timestamp() for p in ran]
    assert set(starts) <= set(enqueued) and len(starts) >= len(enqueued) - 2
    engine.dispose()
