"""The decorator and enqueue: options, typing-visible behaviour, bad input rejected whole."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta, timezone

import pytest

import otelkit.jobs
from otelkit.jobs import (
    Backoff,
    Job,
    JobFunction,
    JobNotFoundError,
    JobNotReadyError,
    JobState,
)
from otelkit.jobs._enqueue import Item, make_options


def _row_count(store: otelkit.jobs.JobStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM otelkit_jobs").scalar_one())


def test_public_names_are_complete_and_sorted() -> None:
    assert otelkit.jobs.__all__ == sorted(otelkit.jobs.__all__)
    for name in otelkit.jobs.__all__:
        assert getattr(otelkit.jobs, name).__doc__


def test_bare_decorator_uses_module_qualname_and_defaults(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)

    @store.job
    def resize(job: Job) -> str:
        return "direct"

    assert isinstance(resize, JobFunction)
    assert (
        resize.name
        == f"{__name__}.test_bare_decorator_uses_module_qualname_and_defaults.<locals>.resize"
    )
    assert resize.queue == "default"
    assert resize.definition.max_attempts == 5
    assert resize.__name__ == "resize"
    job = Job(
        id="x",
        name=resize.name,
        queue="default",
        state=JobState.RUNNING,
        data=None,
        attempt=1,
        max_attempts=1,
    )
    assert resize(job) == "direct"  # still callable directly


def test_decorator_with_options(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)

    @store.job(name="thumbs", queue="media", max_attempts=2, lease=5, backoff=Backoff(base=2.0))
    def thumbs(job: Job) -> None:
        pass

    jid = thumbs.enqueue({"path": "a.png"}, priority=3)
    job = store.get(jid)
    assert job is not None
    assert (job.name, job.queue, job.max_attempts, job.priority, job.state) == (
        "thumbs",
        "media",
        2,
        3,
        JobState.QUEUED,
    )
    assert job.data == {"path": "a.png"}
    assert thumbs.definition.backoff.base == 2.0


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"max_attempts": 0}, ValueError, "max_attempts"),
        ({"max_attempts": True}, ValueError, "max_attempts"),
        ({"lease": 0}, ValueError, "lease"),
        ({"lease": math.inf}, ValueError, "lease"),
        ({"queue": ""}, ValueError, "queue"),
        ({"name": ""}, ValueError, "name"),
        ({"backoff": 3}, TypeError, "backoff"),
        ({"retries": 3}, TypeError, "retries"),
    ],
)
def test_bad_options_are_rejected_by_name(sqlite_url, make_store, options, error, match) -> None:
    store = make_store(sqlite_url)
    with pytest.raises(error, match=match):
        store.job(**options)(lambda job: None)
    assert store.functions == {}


def test_decorating_a_non_function_is_a_clear_type_error(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    with pytest.raises(TypeError, match="decorate a function"):
        store.job("name")  # type: ignore[call-overload]


def test_two_functions_with_one_name_are_refused(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    store.job(name="same")(lambda job: 1)
    with pytest.raises(ValueError, match="already registered"):
        store.job(name="same")(lambda job: 2)


def test_backoff_options_are_validated() -> None:
    with pytest.raises(ValueError, match=r"Backoff.jitter"):
        Backoff(jitter=1.5)
    with pytest.raises(ValueError, match=r"Backoff.base"):
        Backoff(base=0)


@pytest.mark.parametrize("data", [{"when": datetime.now()}, {1, 2}, float("nan"), object()])
def test_non_json_data_is_refused_and_nothing_written(sqlite_url, make_store, data) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="j")(lambda job: None)
    with pytest.raises(TypeError, match="data must be JSON-serialisable"):
        fn.enqueue(data)
    with pytest.raises(TypeError, match="data must be JSON-serialisable"):
        fn.enqueue_many([{"ok": 1}, data])  # the good item is not written either
    assert _row_count(store) == 0


def test_duplicate_id_is_refused_and_the_batch_not_half_written(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="j")(lambda job: None)
    assert fn.enqueue({}, id="order-1") == "order-1"
    with pytest.raises(ValueError, match="already exists"):
        fn.enqueue({}, id="order-1")
    with pytest.raises(ValueError, match="appears twice"):
        store._backend.producer.enqueue(
            "test",
            fn.definition,
            [Item(1, id="a"), Item(2, id="a")],
            make_options("test", run_after=None, priority=0, unique_for=None),
        )
    assert _row_count(store) == 1


@pytest.mark.parametrize(
    ("run_after", "error"),
    [
        (datetime(2030, 1, 1), ValueError),
        ("soon", TypeError),
        (True, TypeError),
        (math.nan, TypeError),
    ],
)
def test_bad_run_after_is_refused(sqlite_url, make_store, run_after, error) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="j")(lambda job: None)
    with pytest.raises(error, match="run_after"):
        fn.enqueue({}, run_after=run_after)
    assert _row_count(store) == 0


def test_run_after_forms_set_the_ready_time(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="j")(lambda job: None)
    at = datetime(2030, 1, 1, tzinfo=timezone.utc)
    j1 = store.get(fn.enqueue({}, run_after=at))
    j2 = store.get(fn.enqueue({}, run_after=timedelta(hours=1)))
    assert j1 is not None and j2 is not None and j2.created_at is not None
    assert j1.run_after == at
    assert j2.run_after is not None
    assert abs((j2.run_after - j2.created_at).total_seconds() - 3600) < 0.01


def test_run_on_unknown_and_unready_jobs(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="j")(lambda job: None)
    other = store.job(name="other")(lambda job: None)
    with pytest.raises(JobNotFoundError):
        fn.run("nope")
    jid = fn.enqueue({})
    with pytest.raises(ValueError, match="belongs to 'j'"):
        other.run(jid)
    assert store.get(jid).state is JobState.QUEUED  # type: ignore[union-attr]
    assert fn.run(jid) is JobState.SUCCEEDED
    with pytest.raises(JobNotReadyError, match="succeeded"):
        fn.run(jid)


def test_async_job_function_runs_with_run_and_run_async(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)

    @store.job(name="a")
    async def double(job: Job) -> int:
        await asyncio.sleep(0)
        return int(job.data) * 2

    first = double.enqueue(21)
    assert double.run(first) is JobState.SUCCEEDED
    second = double.enqueue(5)
    assert asyncio.run(double.run_async(second)) is JobState.SUCCEEDED
    assert store.get(first).result == 42  # type: ignore[union-attr]
    assert store.get(second).result == 10  # type: ignore[union-attr]


def test_sync_run_of_async_function_inside_a_loop_points_to_run_async(
    sqlite_url, make_store
) -> None:
    store = make_store(sqlite_url)

    @store.job(name="a")
    async def noop(job: Job) -> None:
        return None

    jid = noop.enqueue()

    async def main() -> None:
        with pytest.raises(RuntimeError, match="run_async"):
            noop.run(jid)

    asyncio.run(main())
    assert store.get(jid).state is JobState.QUEUED  # type: ignore[union-attr]


def test_set_result_and_non_json_result(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)

    @store.job(name="r", max_attempts=1)
    def r(job: Job) -> object:
        if job.data == "set":
            job.set_result({"rows": 3})
            return None
        return object()  # not JSON: the attempt fails with a TypeError

    ok = r.enqueue("set")
    bad = r.enqueue("bad")
    assert r.run(ok) is JobState.SUCCEEDED
    assert r.run(bad) is JobState.FAILED
    assert store.get(ok).result == {"rows": 3}  # type: ignore[union-attr]
    failed = store.get(bad)
    assert failed is not None and failed.errors[-1].type == "TypeError"


def test_store_rejects_unusable_urls(tmp_path) -> None:
    with pytest.raises(ValueError, match="SQLite \\*file\\*"):
        otelkit.jobs.JobStore("sqlite://")
    with pytest.raises(ValueError, match="supports SQLite and PostgreSQL"):
        otelkit.jobs.JobStore("mysql://u@h/db")
    with pytest.raises(TypeError, match="url_or_engine"):
        otelkit.jobs.JobStore(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="trace_mode"):
        otelkit.jobs.JobStore(tmp_path / "x.db", trace_mode="child")  # type: ignore[arg-type]


def test_plain_postgresql_url_maps_to_psycopg() -> None:
    store = otelkit.jobs.JobStore("postgresql://u@127.0.0.1:1/db", gauges=False)
    assert store.engine.url.drivername == "postgresql+psycopg"
