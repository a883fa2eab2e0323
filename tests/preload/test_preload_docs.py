"""The Redis recipe of docs/preload.md runs as written against the real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
URL = os.environ.get("OTELKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _docs_helpers() -> tuple[Any, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from test_docs_examples import example_env, recipe_files
    finally:
        sys.path.pop(0)
    return example_env, recipe_files


@pytest.mark.redis
def test_the_redis_recipe_runs_and_stores_json_with_the_ttl(tmp_path: Path) -> None:
    client = redis.Redis.from_url(URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(f"no Redis at {URL} ({exc}); set OTELKIT_TEST_REDIS_URL")
    example_env, recipe_files = _docs_helpers()
    script = tmp_path / "preload_redis.py"
    script.write_text(recipe_files(ROOT / "docs" / "preload.md")["preload_redis.py"])
    client.delete("media:user:42", "media:user:42:lock")
    try:
        env = {**example_env(), "REDIS_URL": URL}
        done = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        lines = [line for line in done.stdout.splitlines() if line.startswith(("sync:", "async:"))]
        assert lines == [
            "sync: {'id': '42', 'name': 'Ada'}",
            "async: {'id': '42', 'name': 'Ada'}",
        ]
        assert client.get("media:user:42") == b'{"id":"42","name":"Ada"}'
        assert 290_000 < client.pttl("media:user:42") <= 300_000
        assert client.exists("media:user:42:lock") == 0  # released by the loader's set
    finally:
        client.delete("media:user:42", "media:user:42:lock")
        client.close()
