"""Retention: workers prune old finished jobs and their history, in bounded batches."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from otelkit.errors import OptionTypeError
from otelkit.jobs._retention import Pruner


def _backdate(store, ids, status: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE otelkit_jobs SET status = :s, updated_at = 1000 WHERE id IN :ids")
            .bindparams(sa.bindparam("ids", expanding=True)),
            {"s": status, "ids": list(ids)},
        )  # fmt: skip


def _count(store, table: str = "otelkit_jobs") -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


@pytest.fixture
def aged(db_url, make_store, memory_telemetry):
    """1,200 old finished jobs, old waiting and running ones, and fresh finished ones."""
    store = make_store(db_url, meter_provider=memory_telemetry.meter_provider)
    fn = store.job(name="r")(lambda job: None)
    old = fn.enqueue_many([{"i": i} for i in range(1200)])
    _backdate(store, old[:1000], "succeeded")
    _backdate(store, old[1000:1100], "failed")
    _backdate(store, old[1100:], "cancelled")
    waiting = fn.enqueue_many([{}] * 3)
    _backdate(store, waiting[:2], "queued")
    _backdate(store, waiting[2:], "running")
    fresh = fn.enqueue_many([{}] * 2)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE otelkit_jobs SET status = 'succeeded' WHERE id IN :ids")
            .bindparams(sa.bindparam("ids", expanding=True)), {"ids": list(fresh)}
        )  # fmt: skip
    return store, fn, old, waiting, fresh


def test_pruning_deletes_old_finished_jobs_in_bounded_batches(aged, memory_telemetry) -> None:
    store, _, old, waiting, fresh = aged
    pruner = Pruner(
        store._backend.writer, store._backend.telemetry, owner="p1", age=86400.0, batch=500
    )
    assert pruner.prune_batch() == 500
    assert _count(store) == 1200 + 5 - 500
    assert pruner.run() == (700, False)
    assert {j.id for j in store.list_jobs(limit=100)} == set(waiting) | set(fresh)
    assert store.transitions(old[0]) == [] and store.transitions(waiting[0]) != []
    points = memory_telemetry.metric_points("otelkit.job.pruned")
    by_state = {attrs["otelkit.job.state"]: point.value for attrs, point in points}
    assert by_state == {"succeeded": 1000, "failed": 100, "cancelled": 100}


def test_one_pruner_at_a_time(aged) -> None:
    store, *_ = aged
    first = Pruner(store._backend.writer, store._backend.telemetry, owner="p1", age=86400.0)
    second = Pruner(store._backend.writer, store._backend.telemetry, owner="p2", age=86400.0)
    assert first._acquire()
    assert second.run() == (0, False)
    first._release()
    assert second.run() == (1200, False)


def test_a_running_worker_prunes_and_retention_none_keeps(aged) -> None:
    store, *_ = aged
    store.worker(retention=None).run_until_idle(timeout=60)
    assert _count(store) == 1205
    store.worker(retention=timedelta(days=1)).run_until_idle(timeout=60)
    assert _count(store) == 5  # the waiting ones (the queued ran meanwhile) and the fresh


def test_retention_must_be_a_timedelta(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    store.job(name="r")(lambda job: None)
    with pytest.raises(OptionTypeError, match="worker: retention must be a timedelta"):
        store.worker(retention=7)  # type: ignore[arg-type]
