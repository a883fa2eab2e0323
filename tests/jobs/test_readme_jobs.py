"""The jobs example of the README and docs/jobs.md as users deploy it: a module of jobs, a
producer, a CLI worker."""

from __future__ import annotations

import importlib.util
import json
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

_DOCS_TEST = Path(__file__).resolve().parents[1] / "test_docs_examples.py"
_spec = importlib.util.spec_from_file_location("_docs_examples", _DOCS_TEST)
assert _spec is not None and _spec.loader is not None
docs = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = docs
_spec.loader.exec_module(docs)  # the block parser the docs test uses

README = docs.ROOT / "README.md"
JOBS_PAGE = docs.ROOT / "docs" / "jobs.md"


def _jobs_section_blocks():
    text = README.read_text()
    start = text.index("\n## Jobs\n")
    end = text.index("\n## ", start + 1)
    first, last = text[:start].count("\n") + 1, text[:end].count("\n") + 1
    return [b for b in docs.blocks(README) if first < b.line < last]


def test_the_readme_worker_command_runs_the_enqueued_job(tmp_path: Path) -> None:
    section = _jobs_section_blocks()
    producer = next(b for b in section if b.language == "python" and not b.file_name)
    (console,) = [b for b in section if b.language == "console"]
    commands = [line[2:] for line in console.code.splitlines() if line.startswith("$ ")]
    assert commands[0] == "otelkit jobs worker --import thumbs --until-idle"
    files = docs.recipe_files(README)
    assert "thumbs.py" in files
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    (tmp_path / "producer.py").write_text(producer.code)
    env = docs.example_env()

    enqueued = subprocess.run(
        [sys.executable, "producer.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert enqueued.returncode == 0, enqueued.stderr
    _, name, job_id = enqueued.stdout.split()
    assert name == "thumbs.thumbnail"

    outputs = []
    for command in commands:  # exactly as written, `otelkit` being this interpreter's
        argv = shlex.split(command)
        assert argv[0] == "otelkit"
        result = subprocess.run(
            [sys.executable, "-m", "otelkit", *argv[1:]],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, f"{command}: {result.stderr[-3000:]}"
        outputs.append(result.stdout)

    assert "stopped after 1 attempt (no job left to run)" in outputs[0]
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as conn:
        status, result_json = conn.execute(
            "select status, result from otelkit_jobs where id = ?", (job_id,)
        ).fetchone()
        limit = conn.execute(
            "select concurrency from otelkit_job_queues where queue = 'media'"
        ).fetchone()
    assert status == "succeeded"
    assert json.loads(result_json) == {"path": "a.png.128px.png"}
    assert limit == (4,)  # the worker's start stored the limit the module declares
    assert job_id in outputs[1] and "succeeded" in outputs[1]  # `otelkit jobs list`


def test_the_jobs_page_periodic_and_timeout_recipe_runs(tmp_path: Path) -> None:
    files = docs.recipe_files(JOBS_PAGE)
    assert "housekeeping.py" in files
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    env = docs.example_env()
    code = (
        "import housekeeping, thumbs\n"
        "thumbs.store.create_schema()\n"
        "assert housekeeping.transcode.definition.timeout == 30\n"
        "print(len(thumbs.store.schedule_due()))\n"
    )
    scheduled = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr
    assert scheduled.stdout.split()[-1] == "1"  # a new schedule starts with this period
    worker = subprocess.run(
        [sys.executable, "-m", "otelkit", "jobs", "worker", "--import", "thumbs",
         "--import", "housekeeping", "--until-idle"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr[-3000:]
    listing = subprocess.run(
        [sys.executable, "-m", "otelkit", "jobs", "list", "--db", "jobs.sqlite3"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "housekeeping.purge_old" in listing.stdout and "succeeded" in listing.stdout
    assert "cron '0 3 * * *' Europe/Paris" in listing.stdout  # the schedule is listed
