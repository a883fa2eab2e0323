"""``otelkit jobs ...``: readable tables, exit codes, and a worker run from the command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from otelkit.jobs import JobState, Limits
from otelkit.jobs._cli import register
from otelkit.testing import wait_until


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="otelkit")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["jobs", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def jobs(sqlite_url, make_store):
    store = make_store(sqlite_url)
    ok = store.job(name="ok")(lambda job: None)
    bad = store.job(name="bad", max_attempts=1)(lambda job: 1 / 0)
    done, broken, waiting = ok.enqueue({"n": 1}), bad.enqueue(), ok.enqueue(run_after=3600)
    ok.run(done)
    bad.run(broken)
    return store, sqlite_url, done, broken, waiting


def test_list_prints_a_table_filtered_by_state(jobs, capsys) -> None:
    _, url, done, broken, waiting = jobs
    code, out, _ = _run(capsys, "list", "--db", url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "NAME", "QUEUE", "STATE"]
    assert len(lines) == 4 and {done, broken, waiting} <= set(out.split())
    assert "ZeroDivisionError: division by zero" in out
    code, out, _ = _run(capsys, "list", "--db", url, "--state", "failed")
    assert code == 0 and broken in out and done not in out


def test_show_prints_fields_errors_and_history(jobs, capsys) -> None:
    _, url, _, broken, _ = jobs
    code, out, _ = _run(capsys, "show", "--db", url, broken)
    assert code == 0
    assert "state      failed" in out
    assert "    ZeroDivisionError: division by zero" in out
    history = out.split("history:")[1].splitlines()
    assert [line.split()[1:3] for line in history[2:]] == [
        ["-", "queued"], ["queued", "running"], ["running", "failed"],
    ]  # fmt: skip
    assert _run(capsys, "show", "--db", url, "missing")[0] == 1


def test_show_prints_each_error_with_its_traceback_and_trace_id(
    sqlite_url, make_store, memory_telemetry, capsys
) -> None:
    store = make_store(sqlite_url, tracer_provider=memory_telemetry.tracer_provider)

    @store.job(name="explode", max_attempts=1)
    def explode(job):
        raise KeyError("missing-key")

    job_id = explode.enqueue()
    explode.run(job_id)
    (span,) = [s for s in memory_telemetry.spans() if s.name.startswith("process")]
    (send,) = [s for s in memory_telemetry.spans() if s.name.startswith("send")]
    code, out, _ = _run(capsys, "show", "--db", sqlite_url, job_id)
    assert code == 0
    errors = out.split("errors (oldest first):")[1].split("history:")[0]
    assert f"trace {span.context.trace_id:032x}" in errors
    assert "    KeyError: 'missing-key'" in errors
    assert "    Traceback (most recent call last):" in errors
    assert 'raise KeyError("missing-key")' in errors  # the failing line itself
    assert f"trace      {send.context.trace_id:032x}" in out  # the enqueue's trace


def test_show_prints_data_and_result_as_json_and_times_in_utc(
    sqlite_url, make_store, capsys
) -> None:
    store = make_store(sqlite_url)
    echo = store.job(name="echo")(lambda job: {"ok": True, "n": None})
    job_id = echo.enqueue({"path": "a.png", "sizes": [64, 128], "crop": False})
    echo.run(job_id)
    code, out, _ = _run(capsys, "show", "--db", sqlite_url, job_id)
    assert code == 0
    fields = dict(line.split(None, 1) for line in out.split("\n\n")[0].splitlines())
    assert json.loads(fields["data"]) == {"path": "a.png", "sizes": [64, 128], "crop": False}
    assert json.loads(fields["result"]) == {"ok": True, "n": None}
    for key in ("created", "updated", "finished"):
        when = datetime.fromisoformat(fields[key].replace("Z", "+00:00"))
        assert when.utcoffset() == timedelta(0)
        assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 600
    history = out.split("history:")[1].splitlines()
    assert history[1].split()[:2] == ["TIME", "(UTC)"]
    assert all(line.split()[0].endswith("Z") for line in history[2:])


def test_retry_cancel_and_purge(jobs, capsys) -> None:
    store, url, done, broken, waiting = jobs
    code, out, err = _run(capsys, "retry", "--db", url, broken, done)
    assert code == 1  # one of them could not be retried
    assert f"retry: {broken} queued again" in out
    assert (
        f"retry: {done} left as it is: it already succeeded; only failed or cancelled jobs "
        "can be retried" in err
    )
    assert store.get(broken).state is JobState.QUEUED
    assert _run(capsys, "cancel", "--db", url, waiting)[0] == 0
    assert store.get(waiting).state is JobState.CANCELLED
    code, out, _ = _run(capsys, "purge", "--db", url, "--older-than", "0s")
    assert code == 0 and out.startswith("purged 2 jobs")
    assert store.get(done) is None and store.get(broken) is not None
    assert _run(capsys, "purge", "--db", url, "--older-than", "soon")[0] == 2


def test_missing_db_is_a_usage_error(capsys, monkeypatch) -> None:
    monkeypatch.delenv("OTELKIT_JOBS_DB", raising=False)
    code, _, err = _run(capsys, "list")
    assert code == 2 and "--db is required" in err


def test_worker_without_job_functions_is_a_usage_error(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "empty_jobs_mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = _run(
        capsys, "worker", "--db", str(tmp_path / "j.db"), "--import", "empty_jobs_mod"
    )
    assert code == 2 and "no @store.job functions" in err


def test_worker_command_runs_jobs_and_stops_on_sigterm(tmp_path, sqlite_url, make_store) -> None:
    (tmp_path / "cli_jobs_app.py").write_text(
        textwrap.dedent(
            """
            from otelkit.jobs import JobStore

            store = JobStore("declared-elsewhere.db")

            @store.job(name="greet")
            def greet(job):
                return "hello " + job.data
            """
        )
    )
    store = make_store(sqlite_url)
    greet = store.job(name="greet")(lambda job: None)
    ids = greet.enqueue_many(["a", "b", "c"])
    env = dict(os.environ, OTEL_SDK_DISABLED="true", PYTHONPATH=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "otelkit", "jobs", "worker", "--db", sqlite_url,
         "--import", "cli_jobs_app", "--concurrency", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_until(lambda: all(store.get(i).state is JobState.SUCCEEDED for i in ids), timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert [store.get(i).result for i in ids] == ["hello a", "hello b", "hello c"]
    assert b"stopped after 3 attempts" in out


def test_worker_without_db_uses_the_modules_own_store(tmp_path, sqlite_url, make_store) -> None:
    (tmp_path / "cli_chain_app.py").write_text(
        textwrap.dedent(
            """
            import os
            from otelkit.jobs import JobStore

            store = JobStore(os.environ["CHAIN_DB"], gauges=False)

            @store.job(name="first")
            def first(job):
                second.enqueue(job.data + 1)  # a follow-up, through the module's store

            @store.job(name="second")
            def second(job):
                return job.data * 10
            """
        )
    )
    store = make_store(sqlite_url)
    first = store.job(name="first")(lambda job: None)
    jid = first.enqueue(1)
    env = dict(os.environ, OTEL_SDK_DISABLED="true", PYTHONPATH=str(tmp_path), CHAIN_DB=sqlite_url)
    env.pop("OTELKIT_JOBS_DB", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "otelkit", "jobs", "worker", "--import", "cli_chain_app"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip

    def follow_up_done() -> bool:
        done = store.list_jobs(states=["succeeded"], name="second")
        return bool(done) and done[0].result == 20

    try:
        wait_until(follow_up_done, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert store.get(jid).state is JobState.SUCCEEDED


def test_inspecting_a_missing_sqlite_file_reports_and_creates_nothing(tmp_path, capsys) -> None:
    missing = tmp_path / "nope.db"
    code, _, err = _run(capsys, "list", "--db", str(missing))
    assert code == 2
    assert f"no job store at {missing}: the file does not exist" in err
    assert not missing.exists()


def test_inspecting_a_database_without_job_tables_says_so(tmp_path, capsys) -> None:
    import sqlite3

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table unrelated (a)").connection.close()
    code, _, err = _run(capsys, "show", "some-id", "--db", str(other))
    assert code == 2
    assert "has no otelkit job tables yet (store.create_schema() or" in err


def test_cancel_of_a_finished_job_says_what_happened_to_it(jobs, capsys) -> None:
    _, url, done, broken, _ = jobs
    code, _, err = _run(capsys, "cancel", "--db", url, done, broken, "no-such-id")
    assert code == 1
    assert f"cancel: {done} left as it is: it already succeeded" in err
    assert f"cancel: {broken} left as it is: it already failed" in err
    assert "cancel: no-such-id left as it is: there is no job with this id" in err
    assert "skipped" not in err and "it is succeeded" not in err


def test_a_bare_word_for_db_is_a_usage_error_naming_both_forms(
    tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "list", "--db", "jobs")
    assert code == 2
    assert "--db: 'jobs' is neither a database URL nor a SQLite file path" in err
    assert "postgresql://user@host:5432/dbname" in err and "jobs.sqlite3" in err
    assert list(tmp_path.iterdir()) == []


def test_worker_until_idle_runs_every_ready_job_then_exits(
    tmp_path, sqlite_url, make_store
) -> None:
    (tmp_path / "idle_jobs_app.py").write_text(
        textwrap.dedent(
            """
            from otelkit.jobs import JobStore

            store = JobStore("declared-elsewhere.db")

            @store.job(name="double")
            def double(job):
                return job.data * 2
            """
        )
    )
    store = make_store(sqlite_url)
    double = store.job(name="double")(lambda job: None)
    ids = double.enqueue_many([1, 2, 3, 4])
    later = double.enqueue(5, run_after=3600)  # not ready: not waited for
    env = dict(os.environ, OTEL_SDK_DISABLED="true", PYTHONPATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "otelkit", "jobs", "worker", "--db", sqlite_url,
         "--import", "idle_jobs_app", "--until-idle"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [store.get(i).result for i in ids] == [2, 4, 6, 8]
    assert store.get(later).state is JobState.QUEUED
    assert "stopped after 4 attempts (no job left to run)" in result.stdout


def test_pause_and_resume_queues_from_the_command_line(jobs, capsys) -> None:
    store, url, *_ = jobs
    code, out, _ = _run(capsys, "pause", "--db", url, "default")
    assert code == 0 and "pause: default paused" in out and "paused queues: default" in out
    assert store.paused_queues() == ["default"]
    code, out, _ = _run(capsys, "resume", "--db", url, "default")
    assert code == 0 and "paused queues: none" in out and store.paused_queues() == []
    code, _, err = _run(capsys, "pause", "--db", url, "nope")
    assert code == 2 and "queue 'nope' is unknown" in err and store.paused_queues() == []


def test_flow_limits_from_the_command_line(jobs, capsys) -> None:
    store, url, *_ = jobs
    code, out, _ = _run(capsys, "limits", "--db", url)
    assert code == 0 and "no queue has limits" in out
    code, out, _ = _run(
        capsys, "limits", "set", "--db", url, "default", "--concurrency", "3", "--rate", "20/1s"
    )
    assert code == 0 and "limits: default concurrency=3 rate=20/1s" in out
    [stored] = store.limits()
    assert (stored.limits.concurrency, stored.limits.rate.limit, stored.set_by) == (
        3,
        20,
        "operator",
    )
    assert out.splitlines()[-2].split()[:5] == ["QUEUE", "LIMITS", "SET", "BY", "RUNNING"]
    assert out.splitlines()[-1].split()[:5] == [
        "default",
        "concurrency=3",
        "rate=20/1s",
        "operator",
        "0",
    ]
    code, out, _ = _run(capsys, "limits", "--db", url, "reset", "default")
    assert code == 0 and "reset to the code's: none" in out and store.limits() == []
    code, _, err = _run(capsys, "limits", "set", "--db", url, "default", "--rate", "0/1s")
    assert code == 2 and "--rate: Rate: limit must be >= 1" in err
    code, _, err = _run(capsys, "limits", "set", "--db", url, "nope", "--concurrency", "1")
    assert code == 2 and "queue 'nope' is unknown" in err


def test_list_and_show_say_why_a_ready_job_waits(sqlite_url, make_store, capsys) -> None:
    store = make_store(sqlite_url)
    step = store.job(name="step")(lambda job: None)
    running, held = step.enqueue(), step.enqueue()
    store.set_limits("default", Limits(concurrency=1))
    [attempt], _, _ = store._backend.cycle("w1", [], queues=["default"], limit=5)
    held = held if attempt.job.id == running else running
    code, out, _ = _run(capsys, "list", "--db", sqlite_url)
    assert code == 0 and "WAITING ON" in out.splitlines()[0]
    [line] = [line for line in out.splitlines() if line.startswith(held)]
    assert line.endswith("concurrency: 1 of 1 running in queue 'default'")
    code, out, _ = _run(capsys, "show", "--db", sqlite_url, held)
    assert code == 0 and "waiting on  concurrency: 1 of 1 running in queue 'default'" in out
