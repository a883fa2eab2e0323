"""create_schema() upgrades a database made by the previous release, and jobs still run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from otelkit.jobs import JobState, JobStore, SchemaMissingError

_PREVIOUS = Path(__file__).parent / "previous" / "schema_previous.py"


def _previous_schema() -> ModuleType:
    """The schema module of the previous release (copied verbatim from it)."""
    spec = importlib.util.spec_from_file_location("otelkit_jobs_schema_previous", _PREVIOUS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_create_schema_upgrades_a_previous_release_database(db_url) -> None:
    engine = sa.create_engine(db_url)
    previous = _previous_schema()
    previous.create_schema(engine)
    with engine.begin() as conn:  # a job the previous release enqueued
        conn.execute(
            sa.insert(previous.jobs).values(
                id="old-1", name="up", queue="default", status="queued", priority=0,
                attempt=0, max_attempts=3, lease_seconds=30.0, run_after=0.0,
                created_at=0.0, updated_at=0.0, errors=[],
            )
        )  # fmt: skip
    engine.dispose()
    store = JobStore(db_url, gauges=False)
    try:
        fn = store.job(name="up")(lambda job: job.data)
        store.create_schema()
        store.create_schema()  # idempotent
        assert fn.enqueue(1, unique_key="k") == fn.enqueue(2, unique_key="k")
        store.pause("default")
        store.resume("default")
        assert store.worker(concurrency=1).run_until_idle(timeout=30) == 2
        assert store.get("old-1").state is JobState.SUCCEEDED
        indexes = {i["name"] for i in sa.inspect(store.engine).get_indexes("otelkit_jobs")}
        assert "ux_otelkit_jobs_unique" in indexes
    finally:
        store.close()


def test_a_store_on_a_previous_release_database_asks_for_create_schema(db_url) -> None:
    engine = sa.create_engine(db_url)
    _previous_schema().create_schema(engine)
    engine.dispose()
    store = JobStore(db_url, gauges=False)
    try:
        fn = store.job(name="up")(lambda job: None)
        with pytest.raises(SchemaMissingError, match="create_schema"):
            fn.enqueue(unique_key="k")
    finally:
        store.close()
