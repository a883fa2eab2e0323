"""job.then(): a follow-up is committed with the attempt's success, and only then."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.jobs import Job, JobState, LeaseLostError


def _names(store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(conn.exec_driver_sql("SELECT name FROM otelkit_jobs").scalars())


def test_a_successful_attempt_enqueues_its_follow_up_which_runs(db_url, make_store) -> None:
    store = make_store(db_url)
    done = []
    second = store.job(name="second")(lambda job: done.append(job.data))

    @store.job(name="first")
    def first(job: Job) -> None:
        job.then(second, {"from": job.id})

    handle = first.enqueue()
    assert store.worker(concurrency=1).run_until_idle(timeout=30) == 2
    assert handle.wait(timeout=10).state is JobState.SUCCEEDED
    assert done == [{"from": handle}]


def test_a_failed_attempt_enqueues_nothing(db_url, make_store) -> None:
    store = make_store(db_url)
    second = store.job(name="second")(lambda job: None)

    @store.job(name="first", max_attempts=1)
    def first(job: Job) -> None:
        job.then(second, {})
        raise RuntimeError("after then")

    assert first.run(first.enqueue()) is JobState.FAILED
    assert _names(store) == ["first"]


def test_an_attempt_that_lost_its_lease_enqueues_nothing(db_url, make_store) -> None:
    store = make_store(db_url)
    second = store.job(name="second")(lambda job: None)

    @store.job(name="first")
    def first(job: Job) -> None:
        job.then(second, {})
        with store.engine.begin() as conn:  # another worker took the job over meanwhile
            conn.execute(
                sa.text("UPDATE otelkit_jobs SET lease_owner = 'thief' WHERE id = :id"),
                {"id": job.id},
            )

    handle = first.enqueue()
    with pytest.raises(LeaseLostError, match=r"lease lost \(another worker took the job over"):
        first.run(handle)
    assert _names(store) == ["first"]
    handle2 = first.enqueue()
    store.worker(concurrency=1).run_until_idle(timeout=30)
    assert store.get(handle2).state is JobState.RUNNING  # the thief holds it
    assert _names(store) == ["first", "first"]


def test_the_follow_ups_span_links_to_the_attempt(sqlite_url, make_store, memory_telemetry) -> None:
    store = make_store(sqlite_url, tracer_provider=memory_telemetry.tracer_provider)
    second = store.job(name="second")(lambda job: None)
    first = store.job(name="first")(lambda job: job.then(second))
    assert first.run(first.enqueue()) is JobState.SUCCEEDED
    store.worker(concurrency=1).run_until_idle(timeout=30)
    spans = memory_telemetry.spans()
    attempt = next(s for s in spans if s.attributes.get("otelkit.job.name") == "first"
                   and s.name.startswith("process"))  # fmt: skip
    send = next(s for s in spans if s.name.startswith("send") and s.parent is not None
                and s.parent.span_id == attempt.context.span_id)  # fmt: skip
    follow = next(s for s in spans if s.attributes.get("otelkit.job.name") == "second"
                  and s.name.startswith("process"))  # fmt: skip
    assert follow.links[0].context.span_id == send.context.span_id
    assert follow.links[0].context.trace_id == attempt.context.trace_id


def test_then_refuses_what_is_not_a_job_function(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    errors = []

    @store.job(name="first")
    def first(job: Job) -> None:
        try:
            job.then(print, {})
        except OptionTypeError as exc:
            errors.append(str(exc))

    first.run(first.enqueue())
    assert errors and "job.then: fn must be a job function" in errors[0]


def test_then_outside_a_running_attempt_raises_and_records_nothing(db_url, make_store) -> None:
    store = make_store(db_url)
    second = store.job(name="second")(lambda job: None)
    kept: list[Job] = []
    first = store.job(name="first")(kept.append)
    handle = first.enqueue()
    snapshot = store.get(handle)
    assert snapshot is not None
    with pytest.raises(InvalidOptionError) as raised:
        snapshot.then(second, {"n": 1})
    message = str(raised.value)
    assert "job.then() can only be called inside a running job attempt" in message
    assert "call second.enqueue(...)" in message
    assert snapshot.followups == ()

    # The snapshot an attempt handed its function is closed once the function returned.
    assert first.run(handle) is JobState.SUCCEEDED
    with pytest.raises(InvalidOptionError, match=r"inside a running job attempt"):
        kept[0].then(second)
    assert kept[0].followups == ()
    assert store.worker(concurrency=1).run_until_idle(timeout=30) == 0
    assert _names(store) == ["first"]
