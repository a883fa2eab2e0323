"""The Redis adapter recipe of docs/preload.md works with a Preloader (a stand-in client)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from otelkit.preload import Preloader
from otelkit.testing import FakeClock

from .conftest import InlineExecutor

ROOT = Path(__file__).resolve().parents[2]


class StandInRedis:
    """The three redis.Redis calls the recipe makes, over a dict, with ``px`` expiry."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.data: dict[str, tuple[bytes, float]] = {}
        self.px: list[int] = []

    def get(self, name: str) -> bytes | None:
        found = self.data.get(name)
        if found is None or found[1] <= self.clock.monotonic():
            return None
        return found[0]

    def set(self, name: str, value: str, *, px: int) -> None:
        self.px.append(px)
        self.data[name] = (value.encode(), self.clock.monotonic() + px / 1000)

    def delete(self, name: str) -> None:
        self.data.pop(name, None)


def _recipe(tmp_path: Path) -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from test_docs_examples import recipe_files
    finally:
        sys.path.pop(0)
    path = tmp_path / "redis_cache.py"
    path.write_text(recipe_files(ROOT / "docs" / "preload.md")["redis_cache.py"])
    spec = importlib.util.spec_from_file_location("redis_cache", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_redis_recipe_stores_json_with_the_ttl_and_serves_hits(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    client = StandInRedis(fake_clock)
    cache = _recipe(tmp_path).RedisCache(client)
    calls: list[str] = []

    def load(key: str) -> dict[str, str]:
        calls.append(key)
        return {"user": key}

    with Preloader(cache, ttl=300.0, clock=fake_clock, executor=InlineExecutor()) as pre:
        assert pre.get("user:1", load) == {"user": "user:1"}
        assert pre.get("user:1", load) == {"user": "user:1"}  # a hit, from "Redis"
        assert client.data["cache:user:1"][0] == b'{"user": "user:1"}'
        assert client.px == [300_000]
        pre.invalidate("user:1")
        assert "cache:user:1" not in client.data
    assert calls == ["user:1"]
