"""The relay with real child processes (multiprocessing spawn and fork, subprocess)."""

from __future__ import annotations

import collections
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otelkit.relay import RELAY_ENV, RelayHost
from otelkit.testing import MemoryTelemetry, wait_until

from . import workers

# Python 3.12+ warns when a process with threads forks; forking such a process is the
# behaviour under test here (fork children of a relay host or child).
pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


WORKERS = str(Path(workers.__file__))


def _run(ctx: Any, target: Any, *args: Any, timeout: float = 60) -> None:
    proc = ctx.Process(target=target, args=args)
    proc.start()
    proc.join(timeout)
    assert proc.exitcode == 0


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_eight_children_ten_thousand_records_each_arrive_exactly_once(
    method: str, relay_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    ctx = multiprocessing.get_context(method)
    procs = [ctx.Process(target=workers.log_records, args=(f"child-{n}", 10_000)) for n in range(8)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    try:
        wait_until(lambda: relay_host.stats["logs"] >= 80_000, timeout=60)
    except TimeoutError:
        raise AssertionError(f"relay stats: {relay_host.stats}") from None
    seen = collections.Counter(
        (rec.log_record.attributes[workers.TAG], rec.log_record.attributes[workers.SEQ])
        for rec in memory_telemetry.logs()
    )
    assert len(seen) == 80_000
    assert set(seen.values()) == {1}
    assert relay_host.stats["dropped_logs"] == 0
    pids = {rec.resource.attributes["process.pid"] for rec in memory_telemetry.logs()}
    assert pids == {proc.pid for proc in procs}


def test_subprocess_child_finds_the_relay_through_the_environment(
    relay_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    subprocess.run(
        [sys.executable, WORKERS, "log", "sub", "100"], check=True, timeout=60, env=os.environ
    )
    wait_until(lambda: relay_host.stats["logs"] >= 100, timeout=10)
    seqs = sorted(rec.log_record.attributes[workers.SEQ] for rec in memory_telemetry.logs())
    assert seqs == list(range(100))


def test_child_killed_with_sigkill_leaves_the_host_serving_others(
    relay_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    victim = subprocess.Popen(
        [sys.executable, WORKERS, "steady", "30"], stdout=subprocess.PIPE, env=os.environ
    )
    try:
        assert victim.stdout is not None
        victim.stdout.readline()  # it has logged 50 records
        wait_until(lambda: relay_host.stats["logs"] > 0, timeout=10)
        victim.kill()
        victim.wait(10)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
        assert victim.stdout is not None
        victim.stdout.close()
    before = relay_host.stats["logs"]
    _run(multiprocessing.get_context("spawn"), workers.log_records, "after", 500)
    wait_until(lambda: relay_host.stats["logs"] >= before + 500, timeout=20)
    after = [
        r for r in memory_telemetry.logs() if r.log_record.attributes.get(workers.TAG) == "after"
    ]
    assert len(after) == 500


class _Proc:
    """A subprocess whose stdout lines are read on a thread (waits stay bounded)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, WORKERS, *args],
            stdout=subprocess.PIPE,
            text=True,
            env=env or os.environ.copy(),
        )
        self.lines: collections.deque[str] = collections.deque()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.strip())

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def last(self) -> dict[str, Any]:
        found = self.json_lines()
        return found[-1] if found else {}

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._thread.join(10)
        assert self.popen.stdout is not None
        self.popen.stdout.close()


@pytest.fixture
def host_process() -> Iterator[_Proc]:
    proc = _Proc("host")
    try:
        wait_until(lambda: proc.json_lines(), timeout=30)
        yield proc
    finally:
        proc.stop()


def _child_env(host: _Proc) -> dict[str, str]:
    env = os.environ.copy()
    env[RELAY_ENV] = host.json_lines()[0]["env"]
    return env


@pytest.mark.slow
def test_frozen_host_never_blocks_the_child_and_every_record_is_delivered_or_counted(
    host_process: _Proc,
) -> None:
    child = _Proc("flood", "1.5", "20000", env=_child_env(host_process))
    try:
        wait_until(lambda: "A" in child.lines, timeout=30)
        os.kill(host_process.popen.pid, signal.SIGSTOP)
        time.sleep(5.0)  # the behaviour under test: a host frozen for 5 s
        os.kill(host_process.popen.pid, signal.SIGCONT)
        wait_until(lambda: "emitted" in child.last(), timeout=60)
        summary = child.last()
        wait_until(
            lambda: (
                host_process.last().get("logs", 0) + host_process.last().get("dropped_logs", 0)
                >= summary["emitted"]
            ),
            timeout=30,
        )
    finally:
        child.stop()
    host = host_process.last()
    assert summary["flushed"] is True
    assert summary["dropped"] > 0  # the freeze really filled the buffer
    assert host["logs"] + host["dropped_logs"] == summary["emitted"]
    assert host["dropped_logs"] == summary["dropped"]
    # Never blocked: no call came near the 5 s freeze (one that waited for the frozen host
    # would take all of it; how fast the calls are is relay_child_cost's figure).
    assert summary["max_stalled_ns"] < 1_000_000_000
    # Bounded memory: 20,000 buffered records, far below what 5 s of flat-out logging makes.
    assert summary["rss_growth_kb"] < 64 * 1024


@pytest.mark.slow
def test_host_killed_then_restarted_on_the_same_socket_receives_later_records() -> None:
    host = _Proc("host")
    child: _Proc | None = None
    restarted: _Proc | None = None
    try:
        wait_until(lambda: host.json_lines(), timeout=30)
        env_value = host.json_lines()[0]["env"]
        child = _Proc("steady", "8", env=_child_env(host))
        wait_until(lambda: host.last().get("logs", 0) > 0, timeout=20)
        host.popen.kill()
        host.popen.wait(10)
        emitted_at_kill = child.last().get("emitted", 0)
        restarted = _Proc("host", env_value)
        wait_until(
            lambda: restarted is not None and restarted.last().get("logs", 0) > 0, timeout=20
        )
        wait_until(lambda: "ok" in child.lines, timeout=30)
        assert child.popen.wait(10) == 0  # the child ran on without an exception
        assert child.last()["connects"] >= 2
        assert child.last()["emitted"] > emitted_at_kill
    finally:
        for proc in (child, host, restarted):
            if proc is not None:
                proc.stop()
