"""``fn.run``: database errors, rollback, a completion that fails, the row the job sees."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from otelkit.jobs import Job, JobState


def _drop_history(store) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE otelkit_job_transitions")


def test_a_failed_claim_raises_a_sqlalchemy_error_and_claims_nothing(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="j")(lambda job: None)
    jid = fn.enqueue({})
    _drop_history(store)  # the history trigger of the claim now fails inside the database
    with pytest.raises(sa.exc.DBAPIError, match="otelkit_job_transitions"):
        fn.run(jid)
    job = store.get(jid)
    assert job is not None
    assert (job.state, job.attempt, job.lease_owner) == (JobState.QUEUED, 0, None)


def test_a_completion_that_cannot_be_stored_ends_the_span_and_raises(
    db_url, make_store, memory_telemetry
) -> None:
    store = make_store(db_url, tracer_provider=memory_telemetry.tracer_provider)

    @store.job(name="j")
    def fn(job: Job) -> None:
        _drop_history(store)  # the completion's history trigger will fail

    jid = fn.enqueue({})
    with pytest.raises(sa.exc.DBAPIError, match="otelkit_job_transitions"):
        fn.run(jid)
    process = memory_telemetry.spans()[-1]
    assert process.name == "process default"
    assert process.attributes["error.type"] == "otelkit.jobs.CompletionFailed"
    assert [e.name for e in process.events] == ["otelkit.job.running"]
    job = store.get(jid)
    assert job is not None
    # Still leased to the failed run: its lease expires and another worker takes it over.
    assert (job.state, job.attempt) == (JobState.RUNNING, 1)
    assert job.lease_owner is not None and ":run:" in job.lease_owner


def test_run_hands_the_full_row_to_the_job(db_url, make_store) -> None:
    store = make_store(db_url)
    seen: list[Job] = []

    @store.job(name="j", max_attempts=3)
    def fn(job: Job) -> dict[str, int]:
        seen.append(job)
        return {"n": job.data["n"] + 1}

    jid = fn.enqueue({"n": 41}, priority=7)
    assert fn.run(jid) is JobState.SUCCEEDED
    [job] = seen
    assert (job.id, job.name, job.queue, job.data) == (jid, "j", "default", {"n": 41})
    assert (job.state, job.attempt, job.max_attempts, job.priority) == (JobState.RUNNING, 1, 3, 7)
    assert job.lease_expires is not None and job.created_at is not None
    assert job.lease_expires > job.created_at and job.errors == ()
    stored = store.get(jid)
    assert stored is not None and stored.result == {"n": 42}
