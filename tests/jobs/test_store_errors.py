"""What a newcomer gets wrong first says what to do: store URLs, the driver, the schema."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otelkit.jobs import JobStore, SchemaMissingError


@pytest.mark.parametrize("word", ["not-a-url", "jobs", "postgres"])
def test_a_bare_word_is_refused_naming_both_forms(word, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is neither a database URL nor a SQLite file path") as e:
        JobStore(word)
    message = str(e.value)
    assert "url_or_engine" in message
    assert "'postgresql://user@host:5432/dbname'" in message and "'jobs.sqlite3'" in message
    assert list(tmp_path.iterdir()) == []  # no file named after the typo


@pytest.mark.parametrize("path", ["jobs.sqlite3", "jobs.db", "queue.sqlite", "data/jobs"])
def test_paths_with_a_sqlite_suffix_or_a_separator_are_sqlite_files(
    path, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    store = JobStore(path, gauges=False)
    store.create_schema()
    store.close()
    assert sqlite3.connect(tmp_path / path).execute(
        "select name from sqlite_master where name = 'otelkit_jobs'"
    ).fetchone() == ("otelkit_jobs",)


def test_a_path_object_is_a_file_whatever_its_name(tmp_path) -> None:
    store = JobStore(tmp_path / "plainname", gauges=False)
    store.create_schema()
    store.close()
    assert (tmp_path / "plainname").is_file()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql:/postgres@127.0.0.1/postgres", "'postgresql:' must be followed by '//'"),
        ("sqlite:jobs.db", "'sqlite:' must be followed by '//'"),
        ("postgresql://postgres@127.0.0.1:port/postgres", "is a malformed URL"),
        ("mysql://root@localhost/db", "supports SQLite and PostgreSQL, got a 'mysql' URL"),
    ],
)
def test_malformed_urls_are_a_value_error_saying_what_is_wrong(url, expected, tmp_path) -> None:
    with pytest.raises(ValueError, match="url_or_engine") as e:
        JobStore(url)
    assert expected in str(e.value)
    assert not Path("postgresql:").exists()


def test_a_missing_postgres_driver_names_the_extra(tmp_path) -> None:
    # A real interpreter in which psycopg cannot be imported (as after `make demo`).
    code = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None  # import psycopg -> ModuleNotFoundError
        from otelkit.jobs import JobStore
        try:
            JobStore("postgresql://postgres@127.0.0.1:5432/postgres")
        except ValueError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "needs the PostgreSQL driver psycopg 3" in result.stdout
    assert "pip install 'otelkit[postgres]'" in result.stdout


def test_enqueue_before_create_schema_says_to_call_it(sqlite_url) -> None:
    store = JobStore(sqlite_url, gauges=False)
    thumbnail = store.job(name="thumbnail")(lambda job: None)
    with pytest.raises(SchemaMissingError, match=r"call store\.create_schema\(\) once") as e:
        thumbnail.enqueue({"path": "a.png"})
    assert isinstance(e.value, ValueError)
    assert "otelkit_jobs" not in str(e.value)  # no raw SQL error text
    store.create_schema()
    assert store.get(thumbnail.enqueue({"path": "a.png"})) is not None
    store.close()


@pytest.mark.parametrize(
    "use",
    [
        lambda store, fn: fn.run("some-id"),
        lambda store, fn: store.get("some-id"),
        lambda store, fn: store.list_jobs(),
        lambda store, fn: store.count_by_state(),
        lambda store, fn: store.retry("some-id"),
        lambda store, fn: store.worker().run_until_idle(timeout=10),
    ],
    ids=["fn.run", "get", "list_jobs", "count_by_state", "retry", "worker"],
)
def test_every_use_before_create_schema_says_to_call_it(use, db_url) -> None:
    store = JobStore(db_url, gauges=False)
    fn = store.job(name="thumbnail")(lambda job: None)
    try:
        with pytest.raises(SchemaMissingError, match=r"store\.create_schema\(\)"):
            use(store, fn)
    finally:
        store.close()


def test_other_database_errors_are_not_mistaken_for_a_missing_schema(sqlite_url) -> None:
    store = JobStore(sqlite_url, gauges=False)
    store.create_schema()
    fn = store.job(name="thumbnail")(lambda job: None)
    fn.enqueue(id="dup")
    with pytest.raises(ValueError, match="already exists") as e:
        fn.enqueue(id="dup")
    assert not isinstance(e.value, SchemaMissingError)
    store.close()
