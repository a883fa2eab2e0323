"""Spans and metrics of a job that fails once and then succeeds (in-memory exporters)."""

from __future__ import annotations

import random

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otelkit.jobs import Backoff, Job, JobState


def _points(tel, name):
    return tel.metric_points(name)


def _sum_by(tel, name, *keys):
    out = {}
    for attrs, point in tel.metric_points(name):
        key = tuple(attrs.get(k) for k in keys)
        out[key] = out.get(key, 0) + getattr(point, "value", getattr(point, "count", 0))
    return out


@pytest.fixture
def flaky_store(db_url, make_store, memory_telemetry, fake_clock):
    store = make_store(
        db_url,
        tracer_provider=memory_telemetry.tracer_provider,
        meter_provider=memory_telemetry.meter_provider,
        clock=fake_clock,
        rng=random.Random(1),
        gauges=True,
    )

    @store.job(name="flaky", queue="emails", max_attempts=3, backoff=Backoff(base=5.0))
    def flaky(job: Job) -> str:
        fake_clock.advance(0.25)  # the function "takes" 0.25 s on the injected clock
        if job.attempt == 1:
            raise ConnectionError("smtp down")
        return "sent"

    return store, flaky


def test_spans_of_a_job_that_fails_once_then_succeeds(flaky_store, memory_telemetry) -> None:
    _, flaky = flaky_store
    jid = flaky.enqueue({"to": "a@example.org"})
    assert flaky.run(jid) is JobState.RETRYING
    assert flaky.run(jid) is JobState.SUCCEEDED

    spans = memory_telemetry.spans()
    assert [(s.name, s.kind) for s in spans] == [
        ("send emails", SpanKind.PRODUCER),
        ("process emails", SpanKind.CONSUMER),
        ("process emails", SpanKind.CONSUMER),
    ]
    send, first, second = spans
    assert send.attributes["messaging.system"] == "otelkit"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.destination.name"] == "emails"
    assert send.attributes["messaging.message.id"] == jid
    assert [e.name for e in send.events] == ["otelkit.job.queued"]

    for n, span in ((1, first), (2, second)):
        # linked to the enqueue trace, not parented: each attempt is its own trace
        assert [(link.context.trace_id, link.context.span_id) for link in span.links] == [
            (send.context.trace_id, send.context.span_id)
        ]
        assert span.parent is None and span.context.trace_id != send.context.trace_id
        assert {k: span.attributes[k] for k in (
            "messaging.system", "messaging.operation.type", "messaging.destination.name",
            "messaging.message.id", "otelkit.job.name", "otelkit.job.attempt",
            "otelkit.job.max_attempts",
        )} == {
            "messaging.system": "otelkit", "messaging.operation.type": "process",
            "messaging.destination.name": "emails", "messaging.message.id": jid,
            "otelkit.job.name": "flaky", "otelkit.job.attempt": n, "otelkit.job.max_attempts": 3,
        }  # fmt: skip

    assert [e.name for e in first.events] == [
        "otelkit.job.running", "exception", "otelkit.job.retrying",
    ]  # fmt: skip
    exception = first.events[1]
    assert exception.attributes["exception.type"] == "ConnectionError"
    assert exception.attributes["error.type"] == "ConnectionError"
    assert first.attributes["error.type"] == "ConnectionError"
    assert first.status.status_code is StatusCode.ERROR
    retry = first.events[2].attributes
    assert (retry["otelkit.job.from"], retry["otelkit.job.to"]) == ("running", "retrying")
    assert "smtp down" in retry["otelkit.job.reason"]

    assert [e.name for e in second.events] == ["otelkit.job.running", "otelkit.job.succeeded"]
    assert second.events[0].attributes["otelkit.job.from"] == "retrying"
    assert second.status.status_code is StatusCode.UNSET
    assert "error.type" not in second.attributes


def test_metrics_of_a_job_that_fails_once_then_succeeds(flaky_store, memory_telemetry) -> None:
    _, flaky = flaky_store
    jid = flaky.enqueue({"to": "a@example.org"})
    flaky.run(jid)
    flaky.run(jid)
    tel = memory_telemetry

    assert _sum_by(tel, "otelkit.job.transitions", "otelkit.job.from", "otelkit.job.to") == {
        ("none", "queued"): 1,
        ("queued", "running"): 1,
        ("running", "retrying"): 1,
        ("retrying", "running"): 1,
        ("running", "succeeded"): 1,
    }
    for attrs, _ in _points(tel, "otelkit.job.transitions"):
        assert attrs["otelkit.job.name"] == "flaky"
        assert attrs["messaging.destination.name"] == "emails"
    assert _sum_by(tel, "messaging.client.sent.messages", "messaging.destination.name") == {
        ("emails",): 1
    }
    assert _sum_by(tel, "messaging.client.consumed.messages", "otelkit.job.name") == {("flaky",): 2}
    durations = {
        attrs.get("error.type"): point
        for attrs, point in _points(tel, "messaging.process.duration")
    }
    assert set(durations) == {"ConnectionError", None}
    for point in durations.values():
        assert point.count == 1
        assert point.sum == pytest.approx(0.25)
        assert 0.25 in point.explicit_bounds  # explicit bucket advice applied
    waits = _points(tel, "otelkit.job.queue_wait")
    assert sum(p.count for _, p in waits) == 2
    assert all("messaging.message.id" not in a for a, _ in waits)  # low cardinality

    counts = {a["otelkit.job.state"]: p.value for a, p in _points(tel, "otelkit.job.count")}
    assert counts == {"succeeded": 1}
    assert [p.value for _, p in _points(tel, "otelkit.job.oldest_ready.age")] == [0.0]


def test_gauges_report_ready_jobs_and_their_age(db_url, make_store, memory_telemetry) -> None:
    store = make_store(db_url, meter_provider=memory_telemetry.meter_provider, gauges=True)
    fn = store.job(name="g", queue="q")(lambda job: None)
    fn.enqueue(run_after=-30.0)  # ready for 30 s already
    fn.enqueue(run_after=3600.0)  # not ready yet
    counts = {
        a["otelkit.job.state"]: p.value
        for a, p in memory_telemetry.metric_points("otelkit.job.count")
    }
    assert counts == {"queued": 2}
    [(attrs, age)] = memory_telemetry.metric_points("otelkit.job.oldest_ready.age")
    assert attrs == {"messaging.destination.name": "q"}
    assert 30.0 <= age.value < 40.0


def test_gauge_failure_is_contained(sqlite_url, make_store, memory_telemetry) -> None:
    from otelkit._errors import internal_error_counts

    store = make_store(sqlite_url, meter_provider=memory_telemetry.meter_provider, gauges=True)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE otelkit_jobs")
    before = internal_error_counts().get("jobs.gauges", 0)
    assert memory_telemetry.metric_points("otelkit.job.count") == []
    assert internal_error_counts()["jobs.gauges"] == before + 1


def test_parent_mode_makes_attempts_children_of_the_enqueue(
    sqlite_url, make_store, memory_telemetry
) -> None:
    store = make_store(
        sqlite_url, tracer_provider=memory_telemetry.tracer_provider, trace_mode="parent"
    )
    fn = store.job(name="p")(lambda job: None)
    fn.run(fn.enqueue())
    send, process = memory_telemetry.spans()
    assert process.parent is not None and process.links == ()
    assert (process.parent.trace_id, process.parent.span_id) == (
        send.context.trace_id,
        send.context.span_id,
    )


def test_attempt_without_stored_context_still_gets_a_span(
    sqlite_url, make_store, memory_telemetry
) -> None:
    store = make_store(sqlite_url, tracer_provider=memory_telemetry.tracer_provider)
    fn = store.job(name="p")(lambda job: None)
    jid = fn.enqueue()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE otelkit_jobs SET trace_context = NULL")
    fn.run(jid)
    process = memory_telemetry.spans()[-1]
    assert process.name == "process default" and process.links == ()
    assert process.attributes["messaging.message.id"] == jid


def test_enqueue_failure_is_recorded_on_the_send_span(
    sqlite_url, make_store, memory_telemetry
) -> None:
    store = make_store(
        sqlite_url,
        tracer_provider=memory_telemetry.tracer_provider,
        meter_provider=memory_telemetry.meter_provider,
    )
    fn = store.job(name="e")(lambda job: None)
    fn.enqueue(id="dup")
    with pytest.raises(ValueError, match="already exists"):
        fn.enqueue(id="dup")
    failed = memory_telemetry.spans()[-1]
    assert failed.name == "send default" and failed.status.status_code is StatusCode.ERROR
    sent = _sum_by(memory_telemetry, "messaging.client.sent.messages", "error.type")
    assert sent == {(None,): 1, ("duplicate_id",): 1}


def _record_statements(store):
    """(suppressed?, sql) for every statement the store's engine executes."""
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value
    from sqlalchemy import event

    seen: list[tuple[bool, str]] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((bool(get_value(_SUPPRESS_INSTRUMENTATION_KEY)), statement))

    return seen


def test_polling_runs_with_instrumentation_suppressed(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="q")(lambda job: None)
    seen = _record_statements(store)
    fn.enqueue()
    enqueue = [s for s in seen if "INSERT INTO otelkit_jobs" in s[1]]
    assert enqueue and not any(suppressed for suppressed, _ in enqueue)  # the user's call
    seen.clear()
    assert store.worker().run_until_idle(timeout=30) == 1
    claims = [s for s in seen if s[1].startswith("UPDATE otelkit_jobs")]
    assert len(claims) >= 2  # at least a claim and a completion
    assert all(suppressed for suppressed, sql in seen if not sql.startswith(("BEGIN", "PRAGMA")))


def test_both_gauges_share_one_query_per_collection(sqlite_url, make_store, memory_telemetry):
    store = make_store(sqlite_url, meter_provider=memory_telemetry.meter_provider, gauges=True)
    store.job(name="g")(lambda job: None).enqueue()
    seen = _record_statements(store)
    memory_telemetry.metric_reader.collect()
    assert len([sql for _, sql in seen if "GROUP BY" in sql]) == 1
