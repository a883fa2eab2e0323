"""Celery and RQ end to end: real workers as subprocesses, real Redis and RabbitMQ brokers,
a real Collector (rotel) in front of the OTLP sink.

Every task opens a span tagged ``tq.n``, logs one WARNING and adds 1 to the counter
``tq.done``. The invariant: each task's span and record reach the sink exactly once, the
counter sums to the number of tasks, each pool process or work-horse under its own
``service.instance.id``, the task spans continue the producer's trace, and the worker's
own SIGTERM handling (one warm shutdown per SIGTERM) is left as it is without otelkit.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from otelkit.testing import OtlpSink, RotelCollector, proto_attributes, wait_until

from .processes import LoggedProcess

pytestmark = [pytest.mark.collector, pytest.mark.redis, pytest.mark.slow]

APPS = Path(__file__).with_name("task_queue_apps")
REDIS_URL = os.environ.get("OTELKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("OTELKIT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
# SIGTERM-to-exit may take 0.5 s beyond the same worker without otelkit, plus a quarter of
# that worker's own time: both slow down together on a loaded machine. An exit that waits
# out a timeout (billiard's 1 s join, otelkit's shutdown_timeout) stays well above it.
EXIT_MARGIN = 0.5
EXIT_SLACK = 1.25


def _env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELKIT", "TQ_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME="tq-worker",
        OTELKIT_COALESCE_WINDOW="off",  # every record is distinct: none may be summarised
        OTEL_METRIC_EXPORT_INTERVAL="3600000",  # counters travel only in exit-time flushes
        PYTHONPATH=os.pathsep.join([str(APPS), env.get("PYTHONPATH", "")]),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Worker(LoggedProcess):
    """A worker process run in the task-queue apps' folder."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        super().__init__(argv, env, log, cwd=APPS)


def _send(script: str, env: dict[str, str], *args: str) -> str:
    """Run a producer script; the trace id it printed."""
    done = subprocess.run(
        [sys.executable, script, *args],
        env=env,
        cwd=APPS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout.strip().splitlines()[-1]


def _work_spans(sink: OtlpSink) -> list[tuple[dict[str, Any], Any]]:
    return [(res, span) for res, span in sink.spans() if span.name == "tq.work"]


def _work_logs(sink: OtlpSink) -> list[tuple[dict[str, Any], Any]]:
    return [(res, rec) for res, rec in sink.logs() if "tq.n" in proto_attributes(rec.attributes)]


def _counter_total(sink: OtlpSink) -> int:
    """The sum over processes of each one's last cumulative ``tq.done`` value."""
    last: dict[str, int] = {}
    for resource, _, value in sink.metric_points("tq.done"):
        instance = str(resource.get("service.instance.id"))
        last[instance] = max(last.get(instance, 0), int(value))
    return sum(last.values())


def _assert_each_once(items: list[tuple[dict[str, Any], Any]], count: int) -> None:
    seen = collections.Counter(int(proto_attributes(i.attributes)["tq.n"]) for _, i in items)
    assert sorted(seen) == list(range(count)), f"missing: {set(range(count)) - set(seen)}"
    assert max(seen.values()) == 1, f"twice: {[n for n, c in seen.items() if c > 1]}"


# ---- Celery --------------------------------------------------------------------------


def _celery_worker(env: dict[str, str], log: Path) -> Worker:
    argv = [
        sys.executable, "-m", "celery", "-A", "celery_app", "worker",
        "--pool=prefork", "--concurrency=3", "--max-tasks-per-child=10",
        "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    return Worker(argv, env, log)


def _celery_exit_seconds(env: dict[str, str], log: Path) -> tuple[float, str]:
    worker = _celery_worker(env, log)
    try:
        worker.wait_for_output("ready.")
        seconds = worker.terminate()
        return seconds, worker.output()
    finally:
        worker.close()


TASKS = 300


@pytest.mark.parametrize("broker", ["redis", "amqp"])
def test_celery_prefork_delivers_every_task_once_and_shuts_down_once_per_sigterm(
    broker: str, tmp_path: Path, rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    env = _env(
        rotel_collector.http_endpoint,
        TQ_BROKER=REDIS_URL if broker == "redis" else AMQP_URL,
        TQ_QUEUE=queue,
        TQ_MODE="recipe",
        TQ_NO_INSTRUMENTATION="1" if broker == "redis" else "0",
    )
    worker = _celery_worker(env, tmp_path / "worker.log")
    try:
        worker.wait_for_output("ready.")
        trace_id = _send("celery_send.py", env, str(TASKS))
        wait_until(lambda: len(_work_spans(otlp_sink)) >= TASKS, timeout=180)
        wait_until(lambda: len(_work_logs(otlp_sink)) >= TASKS, timeout=30)
        exit_seconds = worker.terminate()
        output = worker.output()
    finally:
        worker.close()
    assert worker.process.returncode == 0, output[-4000:]
    assert output.count("Warm shutdown") == 1, output[-4000:]
    wait_until(lambda: _counter_total(otlp_sink) >= TASKS, timeout=30)

    spans, logs = _work_spans(otlp_sink), _work_logs(otlp_sink)
    _assert_each_once(spans, TASKS)
    _assert_each_once(logs, TASKS)
    assert _counter_total(otlp_sink) == TASKS
    instances = {res["service.instance.id"] for res, _ in spans}
    assert len(instances) >= TASKS // 10, "each recycled pool process relays as itself"
    assert {format(int.from_bytes(s.trace_id, "big"), "032x") for _, s in spans} == {trace_id}
    runs = [s for _, s in otlp_sink.spans() if s.name == "run/tq.work"]
    assert len(runs) == TASKS  # the task spans whose parent is the producer's span

    if broker == "redis":
        # The same worker without otelkit, for the SIGTERM-to-exit time it is held to. (With
        # RabbitMQ a plain worker's own exit takes 2.3 s one time and 6.7 s the next, so a
        # single comparison there says nothing about otelkit.)
        plain = dict(env, TQ_MODE="plain")
        baseline, _ = _celery_exit_seconds(plain, tmp_path / "plain.log")
        assert exit_seconds <= baseline * EXIT_SLACK + EXIT_MARGIN, (exit_seconds, baseline)


@pytest.mark.parametrize("mode", ["manual", "host-only"])
def test_celery_without_the_recipe_delivers_what_it_records_or_says_what_it_cannot(
    mode: str, tmp_path: Path, rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    env = _env(
        rotel_collector.http_endpoint,
        TQ_BROKER=REDIS_URL,
        TQ_QUEUE=f"tq-{uuid.uuid4().hex[:8]}",
        TQ_MODE=mode,
        TQ_NO_INSTRUMENTATION="1",
    )
    count = 60
    worker = _celery_worker(env, tmp_path / "worker.log")
    try:
        worker.wait_for_output("ready.")
        _send("celery_send.py", env, str(count))
        wait_until(lambda: len(_work_spans(otlp_sink)) >= count, timeout=120)
        worker.terminate()
        output = worker.output()
    finally:
        worker.close()
    wait_until(lambda: _counter_total(otlp_sink) >= count, timeout=30)
    _assert_each_once(_work_spans(otlp_sink), count)
    assert _counter_total(otlp_sink) == count  # recycled children flushed through os._exit
    if mode == "manual":  # configure() in each pool process puts the bridge back
        wait_until(lambda: len(_work_logs(otlp_sink)) >= count, timeout=30)
        _assert_each_once(_work_logs(otlp_sink), count)
    else:  # Celery took the bridge off the root logger after worker_init ...
        assert _work_logs(otlp_sink) == []
        assert "logging bridge was removed from the root logger" in output  # ... and it is said


def test_celery_beat_exports_its_own_logs_through_the_recipe(
    tmp_path: Path, rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    env = _env(
        rotel_collector.http_endpoint,
        TQ_BROKER=REDIS_URL,
        TQ_QUEUE=f"tq-{uuid.uuid4().hex[:8]}",
        TQ_BEAT="1",
        OTEL_SERVICE_NAME="tq-beat",
    )
    argv = [sys.executable, "-m", "celery", "-A", "celery_app", "beat", "--loglevel=INFO",
            "--schedule", str(tmp_path / "schedule")]  # fmt: skip
    beat = Worker(argv, env, tmp_path / "beat.log")
    try:
        beat.wait_for_output("Sending due task tick")
        beat.terminate()
    finally:
        beat.close()

    def sent() -> list[dict[str, Any]]:
        return [res for res, r in otlp_sink.logs() if "Sending due task" in r.body.string_value]

    wait_until(lambda: sent(), timeout=30)
    assert {res["service.name"] for res in sent()} == {"tq-beat"}


# ---- RQ ----------------------------------------------------------------------------------


def _rq_worker(env: dict[str, str], queue: str, log: Path, *extra: str) -> Worker:
    argv = [
        sys.executable, "-m", "rq.cli", "worker", "-w", "otelkit.rq.Worker",
        "--url", REDIS_URL, *extra, queue,
    ]  # fmt: skip
    return Worker(argv, env, log)


def test_rq_delivers_every_job_once_from_its_work_horses(
    tmp_path: Path, rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    jobs = 200
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    env = _env(rotel_collector.http_endpoint)
    trace_id = _send("rq_send.py", env, queue, str(jobs), REDIS_URL)
    worker = _rq_worker(env, queue, tmp_path / "worker.log", "--burst")
    try:
        worker.process.wait(timeout=300)
        output = worker.output()
    finally:
        worker.close()
    assert worker.process.returncode == 0, output[-4000:]
    wait_until(lambda: _counter_total(otlp_sink) >= jobs, timeout=30)
    spans = _work_spans(otlp_sink)
    _assert_each_once(spans, jobs)
    _assert_each_once(_work_logs(otlp_sink), jobs)
    assert _counter_total(otlp_sink) == jobs
    assert len({res["service.instance.id"] for res, _ in spans}) == jobs  # a horse per job
    assert {format(int.from_bytes(s.trace_id, "big"), "032x") for _, s in spans} == {trace_id}


def test_rq_warm_shutdown_lets_the_job_in_flight_finish(
    tmp_path: Path, rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    from redis import Redis

    from otelkit.rq import Queue

    queue_name = f"tq-{uuid.uuid4().hex[:8]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    job = Queue(queue_name, connection=Redis.from_url(REDIS_URL)).enqueue(
        "rq_jobs.slow", str(markers), 3.0
    )
    worker = _rq_worker(_env(rotel_collector.http_endpoint), queue_name, tmp_path / "worker.log")
    try:
        wait_until(lambda: (markers / "started").exists(), timeout=60)
        worker.terminate()
        output = worker.output()
    finally:
        worker.close()
    assert (markers / "finished").exists(), output[-4000:]
    assert job.get_status(refresh=True) == "finished", output[-4000:]
    assert output.count("cold shut down") == 0, output[-4000:]
    assert output.count("warm shut down requested") == 1, output[-4000:]


# ---- the recipes of docs/task-queues.md, as written ----------------------------------------


def _write_recipes(directory: Path) -> None:
    from test_docs_examples import recipe_files  # tests/ is on sys.path (no __init__.py)

    page = Path(__file__).resolve().parents[2] / "docs" / "task-queues.md"
    for name, code in recipe_files(page).items():
        (directory / name).write_text(code)


def _recipe_env(endpoint: str, directory: Path) -> dict[str, str]:
    env = _env(endpoint)
    env["PYTHONPATH"] = str(directory)
    return env


def test_the_celery_recipe_runs_as_written(
    tmp_path: Path, rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    _write_recipes(tmp_path)
    env = _recipe_env(rotel_collector.http_endpoint, tmp_path)
    env["CELERY_BROKER"] = REDIS_URL.rsplit("/", 1)[0] + "/1"  # a database of its own
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool=prefork",
            "--concurrency=3", "--loglevel=INFO"]  # fmt: skip
    worker = Worker(argv, env, tmp_path / "worker.log")
    try:
        worker.wait_for_output("ready.")
        subprocess.run([sys.executable, "send.py"], env=env, cwd=tmp_path, timeout=60, check=True)
        wait_until(
            lambda: any(s.name == "run/tasks.resize" for _, s in otlp_sink.spans()), timeout=60
        )
        worker.terminate()
    finally:
        worker.close()
    (upload,) = [s for _, s in otlp_sink.spans() if s.name == "upload"]
    (run,) = [s for _, s in otlp_sink.spans() if s.name == "run/tasks.resize"]
    assert run.trace_id == upload.trace_id  # (through apply_async/… with the instrumentation)
    (record,) = [(res, r) for res, r in otlp_sink.logs() if "resizing" in r.body.string_value]
    assert record[0]["service.name"] == "shop-worker"
    assert record[1].trace_id == upload.trace_id


def test_the_rq_recipe_runs_as_written(
    tmp_path: Path, rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    from redis import Redis

    Redis.from_url(REDIS_URL).delete("rq:queue:media")
    _write_recipes(tmp_path)
    env = _recipe_env(rotel_collector.http_endpoint, tmp_path)
    subprocess.run([sys.executable, "enqueue.py"], env=env, cwd=tmp_path, timeout=60, check=True)
    argv = [sys.executable, "-m", "rq.cli", "worker", "-w", "otelkit.rq.Worker", "--burst", "media"]
    worker = Worker(argv, env, tmp_path / "worker.log")
    try:
        assert worker.process.wait(timeout=120) == 0, worker.tail()
    finally:
        worker.close()
    (run,) = [s for _, s in otlp_sink.spans() if s.name == "run/media.resize"]
    (record,) = [r for _, r in otlp_sink.logs() if "resizing cat.png" in r.body.string_value]
    assert record.trace_id == run.trace_id
