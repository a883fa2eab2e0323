"""Periodic jobs: options, one job per period, catch-up after downtime, schema migration.

Times are given to ``store.schedule_due(now=...)`` from a FakeClock: no waiting for periods.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from otelkit.jobs import Job, JobState, JobStore, SchemaMissingError
from otelkit.testing import FakeClock

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()


def _at(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock.time(), timezone.utc)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


def _periods(store: JobStore) -> list[str]:
    return sorted(j.data["period"] for j in store.list_jobs(name="tick", limit=1000))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "not a cron"}, "cron must be a valid cron expression"),
        ({"cron": "61 * * * *"}, "cron must be a valid cron expression"),
        ({"every": timedelta(0)}, "every must be a positive timedelta"),
        ({"every": -5}, "every must be a positive timedelta"),
        ({"every": timedelta(seconds=1), "timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"every": 1, "catch_up": "all"}, "catch_up must be 'once' or 'skip'"),
        ({}, "exactly one of cron"),
        ({"cron": "* * * * *", "every": 60}, "exactly one of cron"),
        ({"every": 1, "timeout": 0}, "timeout must be"),
    ],
)
def test_bad_options_are_refused_at_decoration(sqlite_url, make_store, options, message) -> None:
    store = make_store(sqlite_url)
    with pytest.raises(ValueError, match=message):
        store.periodic(name="tick", **options)(lambda job: None)


def test_two_schedules_with_the_same_name_are_refused(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    store.periodic(every=60, name="tick")(lambda job: None)
    with pytest.raises(ValueError, match="already registered"):
        store.periodic(cron="0 * * * *", name="tick")(lambda job: None)


def test_each_period_is_enqueued_once_however_often_schedulers_tick(
    db_url, make_store, clock
) -> None:
    store = make_store(db_url)
    other = make_store(db_url)  # a second scheduler (another machine)
    for s in (store, other):
        s.periodic(every=timedelta(seconds=10), name="tick")(lambda job: None)
    assert len(store.schedule_due(now=_at(clock))) == 1
    assert other.schedule_due(now=_at(clock)) == []
    for _ in range(5):
        clock.advance(4)
        store.schedule_due(now=_at(clock))
        other.schedule_due(now=_at(clock))
    assert _periods(store) == [
        "2026-03-01T12:00:00.000Z",
        "2026-03-01T12:00:10.000Z",
        "2026-03-01T12:00:20.000Z",
    ]


def test_a_stalled_scheduler_leaves_no_gap(sqlite_url, make_store, clock) -> None:
    store = make_store(sqlite_url)
    store.periodic(every=1, name="tick")(lambda job: None)
    store.schedule_due(now=_at(clock))
    clock.advance(3.5)  # a tick 3.5 periods late, well within the grace: not downtime
    assert len(store.schedule_due(now=_at(clock))) == 3
    assert len(_periods(store)) == 4


@pytest.mark.parametrize(("catch_up", "expected"), [("once", 1), ("skip", 0)])
def test_catch_up_after_downtime(sqlite_url, make_store, clock, catch_up, expected) -> None:
    store = make_store(sqlite_url)
    store.periodic(cron="0 * * * *", catch_up=catch_up, name="tick")(lambda job: None)
    assert len(store.schedule_due(now=_at(clock))) == 1  # 12:00 sharp: the current period
    clock.advance(5 * 3600 + 1800)  # no scheduler ran for 5.5 hours: 13:00 … 17:00 missed
    enqueued = store.schedule_due(now=_at(clock))
    assert len(enqueued) == expected
    if expected:
        assert store.get(enqueued[0]).data == {"period": "2026-03-01T17:00:00.000Z"}
    clock.advance(1800)  # 18:00: on time again
    assert len(store.schedule_due(now=_at(clock))) == 1
    clock.advance(3600)
    assert len(store.schedule_due(now=_at(clock))) == 1


def test_cron_reads_in_its_timezone(sqlite_url, make_store, clock) -> None:
    store = make_store(sqlite_url)
    store.periodic(cron="30 9 * * *", timezone="Asia/Tokyo", name="tick")(lambda job: None)
    (job_id,) = store.schedule_due(now=_at(clock))  # 21:00 in Tokyo: today's 09:30 was missed
    assert store.get(job_id).data == {"period": "2026-03-01T00:30:00.000Z"}  # 09:30 JST


def test_a_scheduled_job_is_a_normal_job(sqlite_url, make_store, memory_telemetry) -> None:
    store = make_store(
        sqlite_url,
        tracer_provider=memory_telemetry.tracer_provider,
        meter_provider=memory_telemetry.meter_provider,
    )
    seen: list[dict] = []

    @store.periodic(every=timedelta(hours=1), name="tick", queue="cron", max_attempts=2)
    def tick(job: Job) -> None:
        seen.append(job.data)
        if job.attempt == 1:
            raise RuntimeError("first try fails")

    (job_id,) = store.schedule_due()  # the database's clock
    assert tick.run(job_id) is JobState.RETRYING
    assert tick.run(job_id) is JobState.SUCCEEDED
    assert len(seen) == 2 and seen[0] == seen[1]
    send = next(s for s in memory_telemetry.spans() if s.name == "send cron")
    assert send.attributes["otelkit.job.schedule"] == "tick"
    assert [e.name for e in send.events] == ["otelkit.job.scheduled", "otelkit.job.queued"]
    points = memory_telemetry.metric_points("otelkit.job.scheduled")
    assert [(a["otelkit.job.name"], p.value) for a, p in points] == [("tick", 1)]
    (schedule,) = store.schedules()
    assert (schedule.name, schedule.queue, schedule.spec) == ("tick", "cron", "every 3600s")


def test_a_worker_runs_the_scheduler(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    ran: list[str] = []
    store.periodic(every=timedelta(hours=1), name="tick")(lambda job: ran.append(job.id))
    assert store.worker(concurrency=1).run_until_idle(timeout=10) == 1
    assert len(ran) == 1


def test_create_schema_migrates_a_database_of_the_previous_release(sqlite_url, make_store) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:  # the previous release's jobs table, with one job in it
        conn.exec_driver_sql(
            "CREATE TABLE otelkit_jobs (id VARCHAR(200) PRIMARY KEY, name VARCHAR(200) NOT NULL,"
            " queue VARCHAR(200) NOT NULL, status VARCHAR(16) NOT NULL, claimed_from VARCHAR(16),"
            " data JSON, result JSON, priority INTEGER NOT NULL, attempt INTEGER NOT NULL,"
            " max_attempts INTEGER NOT NULL, lease_seconds FLOAT NOT NULL,"
            " run_after FLOAT NOT NULL, lease_owner VARCHAR(200), lease_expires FLOAT,"
            " created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, finished_at FLOAT,"
            " trace_context JSON, errors JSON NOT NULL, last_error TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO otelkit_jobs VALUES ('old', 'work', 'default', 'queued', NULL, '1',"
            " NULL, 0, 0, 5, 30, 0, NULL, NULL, 0, 0, NULL, NULL, '[]', NULL)"
        )
    engine.dispose()
    store = JobStore(sqlite_url, gauges=False)
    ran: list[str] = []
    store.job(name="work")(lambda job: ran.append(job.id))
    with pytest.raises(SchemaMissingError, match="older release"):
        store.worker().run_until_idle(timeout=10)
    store.create_schema()
    store.create_schema()  # idempotent
    store.periodic(every=60, name="tick")(lambda job: None)
    assert store.worker(concurrency=1).run_until_idle(timeout=10) == 2
    assert "old" in ran
    store.close()


def test_the_scheduler_leaves_no_instrumentation_suppressed(sqlite_url, make_store) -> None:
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value

    store = make_store(sqlite_url)
    store.periodic(every=60, name="tick")(lambda job: None)
    assert len(store.schedule_due()) == 1
    assert not get_value(_SUPPRESS_INSTRUMENTATION_KEY)
