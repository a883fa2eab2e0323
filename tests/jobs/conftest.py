"""Fixtures for the jobs tests: a SQLite file per test, a PostgreSQL database per run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from otelkit.jobs import JobStore

PG_ENV = "OTELKIT_TEST_POSTGRES_URL"


def _admin_url() -> sa.URL | None:
    raw = os.environ.get(PG_ENV)
    if not raw:
        return None
    url = sa.make_url(raw)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a PostgreSQL database created for this test run (dropped afterwards)."""
    admin = _admin_url()
    if admin is None:
        pytest.skip(f"{PG_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/postgres)")
    name = f"otelkit_jobs_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


def _truncate(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TABLE IF EXISTS otelkit_jobs, otelkit_job_transitions, otelkit_job_schedules, "
            "otelkit_job_queues, otelkit_job_locks, otelkit_job_starts, "
            "executions, scheduled_runs CASCADE"
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    url: str = request.getfixturevalue("pg_database")
    _truncate(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL (for tests that need only one backend)."""
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def make_store() -> Iterator[Callable[..., JobStore]]:
    """Create schema-ready stores; all closed at the end of the test."""
    stores: list[JobStore] = []

    def make(url: str, **options: Any) -> JobStore:
        options.setdefault("gauges", False)
        store = JobStore(url, **options)
        store.create_schema()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The run's PostgreSQL database, emptied for this test."""
    _truncate(pg_database)
    return pg_database
