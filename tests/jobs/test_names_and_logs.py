"""Job names that a worker in another process can resolve, and failed attempts that are logged."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otelkit.jobs import JobState

SCRIPT = textwrap.dedent(
    """
    import os
    from otelkit.jobs import Job, JobStore

    store = JobStore(os.environ["JOBS_DB"], gauges=False)
    store.create_schema()

    @store.job
    def thumbnail(job: Job) -> str:
        return "thumb of " + job.data

    if __name__ == "__main__":
        print(thumbnail.name)
        print(thumbnail.enqueue("a.png"))
    """
)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, JOBS_DB=str(cwd / "jobs.sqlite3"), OTEL_SDK_DISABLED="true")
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_job_defined_in_a_script_is_named_after_the_script_and_a_cli_worker_runs_it(
    tmp_path, make_store
) -> None:
    (tmp_path / "thumbs.py").write_text(SCRIPT)
    db = tmp_path / "jobs.sqlite3"
    result = _run(["thumbs.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    name, job_id = result.stdout.split()
    assert name == "thumbs.thumbnail"  # not "__main__.thumbnail"
    worker = _run(
        ["-m", "otelkit", "jobs", "worker", "--db", str(db), "--import", "thumbs", "--until-idle"],
        tmp_path,
    )
    assert worker.returncode == 0, worker.stderr
    job = make_store(str(db)).get(job_id)
    assert (job.state, job.result) == (JobState.SUCCEEDED, "thumb of a.png")


def test_a_job_defined_in_a_module_run_with_dash_m_is_named_after_the_module(tmp_path) -> None:
    package = tmp_path / "media"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "thumbs.py").write_text(SCRIPT)
    result = _run(["-m", "media.thumbs"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "media.thumbs.thumbnail"


@pytest.mark.parametrize("how", ["-c", "my-jobs.py"])
def test_a_job_in_a_main_no_worker_can_import_must_be_given_a_name(how, tmp_path) -> None:
    code = SCRIPT
    if how == "-c":
        args = ["-c", code]
    else:
        (tmp_path / how).write_text(code)
        args = [how]
    result = _run(args, tmp_path)
    assert result.returncode != 0
    assert "ValueError: store.job: thumbnail is defined in __main__" in result.stderr
    assert "pass name=" in result.stderr
    named = code.replace("@store.job\n", "@store.job(name='thumbnail')\n")
    assert _run(["-c", named], tmp_path).returncode == 0


def test_each_failed_attempt_is_logged_once_with_its_traceback(
    sqlite_url, make_store, caplog, memory_telemetry
) -> None:
    store = make_store(sqlite_url, tracer_provider=memory_telemetry.tracer_provider)

    @store.job(name="flaky", max_attempts=2)
    def flaky(job):
        raise ConnectionError(f"reset on attempt {job.attempt}")

    job_id = flaky.enqueue()
    with caplog.at_level(logging.WARNING, logger="otelkit.jobs"):
        flaky.run(job_id)
        flaky.run(job_id)  # run() ignores the backoff's run_after
    records = [r for r in caplog.records if r.name == "otelkit.jobs"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.ERROR]
    first, last = records
    assert first.getMessage().startswith(f"job flaky (id {job_id}) attempt 1 of 2 raised ")
    assert "ConnectionError: reset on attempt 1; will be retried in" in first.getMessage()
    assert "attempt 2 of 2" in last.getMessage()
    assert "no attempt is left: the job failed" in last.getMessage()
    for record, attempt in ((first, 1), (last, 2)):
        assert record.exc_info is not None and record.exc_info[0] is ConnectionError
        assert "reset on attempt" in caplog.text and "Traceback" in caplog.text
        assert getattr(record, "otelkit.job.attempt") == attempt
    assert store.get(job_id).state is JobState.FAILED


def test_the_failure_log_record_carries_the_attempts_trace(
    sqlite_url, make_store, memory_telemetry
) -> None:
    import otelkit

    telemetry = otelkit.configure(exporter="memory", service_name="jobs-log-test")
    try:
        store = make_store(sqlite_url)
        bad = store.job(name="bad", max_attempts=1)(lambda job: 1 / 0)
        bad.run(bad.enqueue())
        assert telemetry.memory is not None
        telemetry.force_flush()
        (span,) = [
            s for s in telemetry.memory.spans.get_finished_spans() if s.name == "process default"
        ]
        (record,) = [
            r.log_record
            for r in telemetry.memory.logs.get_finished_logs()
            if "attempt 1 of 1 raised ZeroDivisionError" in str(r.log_record.body)
        ]
        assert record.trace_id == span.context.trace_id
        assert record.attributes["exception.type"] == "ZeroDivisionError"
        assert "Traceback" in record.attributes["exception.stacktrace"]
    finally:
        telemetry.shutdown()


def test_an_unknown_job_name_is_logged_as_an_error(sqlite_url, make_store, caplog) -> None:
    producer = make_store(sqlite_url)
    job_id = producer.job(name="elsewhere")(lambda job: None).enqueue()
    worker_store = make_store(sqlite_url)
    worker_store.job(name="here")(lambda job: None)
    with caplog.at_level(logging.WARNING, logger="otelkit.jobs"):
        worker_store.worker(queues=["default"], concurrency=1).run_until_idle(timeout=30)
    (record,) = [r for r in caplog.records if r.name == "otelkit.jobs"]
    assert record.levelno == logging.ERROR
    assert "no function named 'elsewhere' is registered" in record.getMessage()
    assert worker_store.get(job_id).state is JobState.FAILED
