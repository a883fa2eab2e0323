"""Unique jobs: a held key returns the holder's id, race-safe across processes."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.jobs import EnqueuedJob, Job, JobState, JobStore


def _count(store: JobStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM otelkit_jobs").scalar_one())


def _noop(job: Job) -> None:
    return None


def test_a_held_key_returns_the_existing_job_and_adds_no_row(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="u")(_noop)
    first = fn.enqueue({"n": 1}, unique_key="report-7")
    again = fn.enqueue({"n": 2}, unique_key="report-7")
    assert isinstance(first, EnqueuedJob) and not first.duplicate
    assert again == first and again.duplicate and again.id == first.id
    assert _count(store) == 1
    assert [t.to_state for t in store.transitions(first)] == ["queued"]


def test_the_key_is_free_again_once_the_job_finished(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="u")(_noop)
    first = fn.enqueue(unique_key="k")
    assert fn.run(first) is JobState.SUCCEEDED
    second = fn.enqueue(unique_key="k")
    assert not second.duplicate and second != first and _count(store) == 2


def test_keys_are_per_function(db_url, make_store) -> None:
    store = make_store(db_url)
    a = store.job(name="a")(_noop)
    b = store.job(name="b")(_noop)
    assert not a.enqueue(unique_key="k").duplicate
    assert not b.enqueue(unique_key="k").duplicate


def test_unique_true_derives_the_key_from_the_data(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="u")(_noop)
    first = fn.enqueue({"a": 1, "b": [1, 2]}, unique=True)
    same = fn.enqueue({"b": [1, 2], "a": 1}, unique=True)  # key order does not matter
    other = fn.enqueue({"a": 2, "b": [1, 2]}, unique=True)
    assert same == first and same.duplicate
    assert not other.duplicate and other != first


def test_unique_for_holds_the_key_for_its_period_even_after_success(
    db_url, make_store, fake_clock
) -> None:
    store = make_store(db_url, clock=fake_clock)
    fn = store.job(name="u")(_noop)
    fake_clock.advance(3600 * 1000 - fake_clock.time() % 3600)  # start of an hour
    first = fn.enqueue(unique_key="daily", unique_for=timedelta(hours=1))
    assert fn.run(first) is JobState.SUCCEEDED
    fake_clock.advance(1800)
    assert fn.enqueue(unique_key="daily", unique_for=3600) == first
    fake_clock.advance(1800)  # the next period
    nxt = fn.enqueue(unique_key="daily", unique_for=3600)
    assert not nxt.duplicate and nxt != first


def test_a_failed_job_does_not_hold_its_period(db_url, make_store, fake_clock) -> None:
    store = make_store(db_url, clock=fake_clock)

    @store.job(name="bad", max_attempts=1)
    def bad(job: Job) -> None:
        raise ValueError("no")

    first = bad.enqueue(unique_key="k", unique_for=3600)
    assert bad.run(first) is JobState.FAILED
    assert not bad.enqueue(unique_key="k", unique_for=3600).duplicate


def test_enqueue_many_with_keys_new_repeated_and_held(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="u")(_noop)
    held = fn.enqueue({"user": 1}, unique_key="user-1")
    items = [{"user": 1}, {"user": 2}, {"user": 2}, {"user": 3}, {"user": 3}]
    keys = ["user-1", "user-2", "user-2", "user-3", None]  # the last item has no key
    handles = fn.enqueue_many(items, unique_keys=keys)
    assert [h.duplicate for h in handles] == [True, False, True, False, False]
    assert handles[0] == held and handles[1] == handles[2] and handles[3] != handles[4]
    assert _count(store) == 4
    by_data = fn.enqueue_many([{"x": 1}, {"x": 1}], unique=True)
    assert by_data[0] == by_data[1] and [h.duplicate for h in by_data] == [False, True]


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"unique_key": 7}, OptionTypeError, "unique_key must be a str"),
        ({"unique_key": ""}, InvalidOptionError, "unique_key must not be empty"),
        ({"unique_key": "x" * 201}, InvalidOptionError, "at most 200"),
        ({"unique_key": "k", "unique": True}, InvalidOptionError, "not both"),
        ({"unique": "yes"}, OptionTypeError, "unique must be True or False"),
        ({"unique_for": 60}, InvalidOptionError, "unique_for needs a unique key"),
        ({"unique_key": "k", "unique_for": -1}, InvalidOptionError, "unique_for must be"),
    ],
)
def test_bad_unique_options_name_the_option_and_write_nothing(
    sqlite_url, make_store, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="u")(_noop)
    with pytest.raises(error, match=match):
        fn.enqueue({}, **options)
    assert _count(store) == 0


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"unique_keys": lambda data: "k"}, OptionTypeError, "unique_keys must be a list"),
        ({"unique_keys": "kk"}, OptionTypeError, "unique_keys must be a list of keys"),
        ({"unique_keys": ["k"]}, InvalidOptionError, "has 1 keys for 2 items"),
        ({"unique_keys": ["k", 7]}, OptionTypeError, r"unique_keys\[1\] must be a str"),
        ({"unique_keys": ["k", ""]}, InvalidOptionError, r"unique_keys\[1\] must not be empty"),
        ({"unique_keys": ["k", "l"], "unique": True}, InvalidOptionError, "not both"),
        ({"unique_for": 60}, InvalidOptionError, "unique_keys=.*or unique=True"),
    ],
)
def test_enqueue_many_refuses_bad_unique_keys_and_writes_nothing(
    sqlite_url, make_store, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="u")(_noop)
    with pytest.raises(error, match=match):
        fn.enqueue_many([{"a": 1}, {"a": 2}], **options)
    assert _count(store) == 0


def _enqueue_many_times(url: str, start: Any, n: int, out: Any) -> None:
    store = JobStore(url, gauges=False)
    try:
        fn = store.job(name="contended")(_noop)
        start.wait(30)
        out.put([str(fn.enqueue({"i": i}, unique_key="the-one")) for i in range(n)])
    finally:
        store.close()


@pytest.mark.postgres
def test_concurrent_enqueues_from_eight_processes_make_one_job(pg_url, make_store) -> None:
    store = make_store(pg_url)
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    children = [
        context.Process(target=_enqueue_many_times, args=(pg_url, start, 200, out))
        for _ in range(8)
    ]
    for child in children:
        child.start()
    start.set()
    ids = [job_id for _ in children for job_id in out.get(timeout=120)]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert len(ids) == 1600
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id FROM otelkit_jobs")).scalars().all()
    assert len(rows) == 1 and set(ids) == {rows[0]}


def test_a_duplicate_is_not_counted_as_sent_and_marked_on_the_span(
    sqlite_url, make_store, memory_telemetry
) -> None:
    store = make_store(
        sqlite_url,
        tracer_provider=memory_telemetry.tracer_provider,
        meter_provider=memory_telemetry.meter_provider,
    )
    fn = store.job(name="u")(_noop)
    first = fn.enqueue(unique_key="k")
    fn.enqueue(unique_key="k")
    sent = memory_telemetry.metric_points("messaging.client.sent.messages")
    assert sum(point.value for _, point in sent) == 1
    spans = [s for s in memory_telemetry.spans() if s.name == "send default"]
    assert "otelkit.job.duplicates" not in spans[0].attributes
    assert spans[1].attributes["otelkit.job.duplicates"] == 1
    assert spans[1].attributes["messaging.message.id"] == first
