"""Pre-fork servers end to end: real gunicorn and uvicorn masters and workers, real HTTP
requests, a real Collector (rotel) in front of the OTLP sink.

Each request ``GET /req/<n>`` opens a span, logs one record and adds 1 to a counter, all
tagged ``prefork.request=<n>``, in whichever worker serves it; the answer is that worker's
pid. The invariant: every request's span, record and increment reaches the sink exactly once,
under the resource of the worker that served it, and the master exits within its bound.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import os
import shlex
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_docs_examples import blocks, recipe_files  # tests/ is on sys.path (no __init__.py)

from otelkit._testsupport import free_port
from otelkit.testing import OtlpSink, RotelCollector, proto_attributes, wait_until

from .processes import LoggedProcess

pytestmark = [pytest.mark.collector, pytest.mark.slow]

APPS = Path(__file__).with_name("prefork_apps")
REQUEST = "prefork.request"
SHUTDOWN = "prefork.shutdown"
EXIT_BOUND = 5.0  # seconds from SIGTERM to the master's exit


# ---- processes --------------------------------------------------------------------------


def _environment(endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELKIT"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME="prefork-master",
        OTELKIT_COALESCE_WINDOW="off",  # every record is distinct: none may be summarised
        # No periodic export within a test: counters travel only in the exit-time flushes.
        OTEL_METRIC_EXPORT_INTERVAL="3600000",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Server(LoggedProcess):
    """A server process listening on ``port``."""

    def __init__(
        self, argv: list[str], env: dict[str, str], port: int, log: Path, cwd: Path = APPS
    ) -> None:
        super().__init__(argv, env, log, cwd)
        self.port = port

    def get(self, path: str, timeout: float = 10.0) -> str:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body.decode()

    def wait_serving(self, timeout: float = 30.0) -> None:
        def serving() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.tail()}")
            try:
                self.get("/", timeout=1.0)
            except (OSError, urllib.error.URLError):
                return False
            return True

        wait_until(serving, timeout=timeout, interval=0.1)

    def terminate(self, timeout: float = 30.0) -> float:
        """SIGTERM the master; the seconds until it exited."""
        return super().terminate(timeout)


def _gunicorn(
    tmp_path: Path,
    endpoint: str,
    *args: str,
    env: dict[str, str] | None = None,
    config: str = "python:otelkit.gunicorn",
) -> Server:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        config,
        "-b",
        f"127.0.0.1:{port}",
        "--no-control-socket",
        "--graceful-timeout",
        "10",
        *args,
        "wsgi_app:app",
    ]
    return Server(argv, _environment(endpoint, **(env or {})), port, tmp_path / "gunicorn.log")


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.close()


def _relay_dir(server: Server) -> Path:
    """The master's relay socket directory, as a worker sees it in ``OTELKIT_RELAY``."""
    value = server.get("/relay")
    directory = Path(value.split(":", 2)[2]).parent
    assert directory.parent == Path(tempfile.gettempdir()), value
    assert directory.name.startswith("otelkit-relay-"), value
    return directory


# ---- requests and what arrived ----------------------------------------------------------


def _drive(server: Server, count: int, *, clients: int = 6) -> dict[int, int]:
    """``GET /req/<n>`` for n < count from ``clients`` threads; ``{n: pid that served it}``."""

    def one(n: int) -> tuple[int, int]:
        return n, int(server.get(f"/req/{n}"))

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return dict(pool.map(one, range(count), timeout=120))


def _by_request(items: list[tuple[dict[str, Any], Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for resource, item in items:
        attributes = proto_attributes(item.attributes)
        if REQUEST in attributes:
            out[attributes[REQUEST]].append(resource)
    return out


def _last_values(sink: OtlpSink) -> dict[tuple[Any, int], tuple[dict[str, Any], Any]]:
    """The last value of each cumulative series of ``prefork.requests``, keyed by
    (``service.instance.id``, request number)."""
    last: dict[tuple[Any, int], tuple[dict[str, Any], Any]] = {}
    for resource, attributes, value in sink.metric_points("prefork.requests"):
        last[(resource.get("service.instance.id"), attributes[REQUEST])] = (resource, value)
    return last


def _settle(sink: OtlpSink, count: int, timeout: float = 30.0) -> None:
    def complete() -> bool:
        return (
            len(_by_request(sink.spans())) >= count
            and len(_by_request(sink.logs())) >= count
            and len({n for _, n in _last_values(sink)}) >= count
        )

    with contextlib.suppress(TimeoutError):  # the assertions say what is missing
        wait_until(complete, timeout=timeout, interval=0.2)


def _assert_every_request_once(
    sink: OtlpSink, served: dict[int, int], master_pid: int, collector: RotelCollector
) -> None:
    count = len(served)
    _settle(sink, count)
    spans, logs = _by_request(sink.spans()), _by_request(sink.logs())
    for kind, got in (("span", spans), ("log record", logs)):
        missing = sorted(set(served) - set(got))
        doubled = sorted(n for n, resources in got.items() if len(resources) != 1)
        assert not missing, f"{len(missing)} requests without a {kind}: {missing[:20]}"
        assert not doubled, f"{len(doubled)} requests with several {kind}s: {doubled[:20]}"
        for n, (resource,) in got.items():
            assert resource["process.pid"] == served[n], (kind, n, resource)
            assert resource["process.pid"] != master_pid
            assert "otelkit.relay.child" in resource
    instance_of_pid = {}
    for resource, _ in sink.spans() + sink.logs():
        if resource.get("process.pid") in set(served.values()):
            instance_of_pid.setdefault(resource["process.pid"], set()).add(
                resource["service.instance.id"]
            )
    assert all(len(ids) == 1 for ids in instance_of_pid.values()), instance_of_pid
    warnings = [
        record.body.string_value
        for _, record in sink.logs()
        if record.body.string_value.startswith("otelkit")
    ]
    assert not warnings, warnings  # e.g. "configure(relay=True) in a child of a relay host"
    last = _last_values(sink)
    counted: collections.Counter[int] = collections.Counter()
    for (instance, n), (resource, value) in last.items():
        assert resource["process.pid"] == served[n], (n, resource)
        assert instance_of_pid[served[n]] == {instance}
        counted[n] += value
    assert sorted(set(served) - set(counted))[:20] == []
    assert sum(counted.values()) == count, {n: v for n, v in counted.items() if v != 1}
    assert set(counted.values()) == {1}
    _assert_collector_accepted_everything(collector)


def _assert_collector_accepted_everything(collector: RotelCollector) -> None:
    """rotel answers an unparsable OTLP body with 400 and logs ``ERROR Failed to decode``."""
    output = collector.output()
    assert "Failed to decode" not in output and "ERROR" not in output, output


# ---- gunicorn -----------------------------------------------------------------------------


GUNICORN_CASES = {
    "sync": ["-w", "3", "-k", "sync"],
    "sync-preload": ["-w", "3", "-k", "sync", "--preload"],
    "gthread": ["-w", "3", "-k", "gthread", "--threads", "4"],
    "sync-max-requests": ["-w", "3", "-k", "sync", "--max-requests", "20"],
}


@pytest.mark.parametrize("case", list(GUNICORN_CASES))
def test_gunicorn_every_request_arrives_once_under_its_worker(
    case: str,
    tmp_path: Path,
    servers: list[Server],
    rotel_collector: RotelCollector,
    otlp_sink: OtlpSink,
) -> None:
    server = _gunicorn(tmp_path, rotel_collector.http_endpoint, *GUNICORN_CASES[case])
    servers.append(server)
    server.wait_serving()
    relay_dir = _relay_dir(server)
    assert relay_dir.is_dir()
    served = _drive(server, 300)
    seconds = server.terminate()
    assert seconds < EXIT_BOUND, server.tail()
    assert server.process.returncode == 0, server.tail()
    if case == "sync-max-requests":
        assert len(set(served.values())) > 3  # workers were recycled: the test is not vacuous
    else:
        assert len(set(served.values())) >= 2, served  # several workers served
    _assert_every_request_once(otlp_sink, served, server.process.pid, rotel_collector)
    assert not relay_dir.exists()


def test_gunicorn_master_exits_within_its_bound_when_the_collector_is_down(
    tmp_path: Path, servers: list[Server]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    server = _gunicorn(tmp_path, closed, "-w", "3", "-k", "sync")
    servers.append(server)
    server.wait_serving()
    relay_dir = _relay_dir(server)
    served = _drive(server, 60)
    assert len(served) == 60
    seconds = server.terminate()
    assert seconds < EXIT_BOUND, server.tail()
    assert server.process.returncode == 0, server.tail()
    assert not relay_dir.exists()


# ---- the gunicorn recipe of docs/prefork.md, as written -----------------------------------

PREFORK_DOC = Path(__file__).resolve().parents[2] / "docs" / "prefork.md"


def _recipe_commands() -> list[list[str]]:
    """The ``$ ...`` lines of the page's console block that starts gunicorn."""
    (console,) = [
        b for b in blocks(PREFORK_DOC) if b.language == "console" and "gunicorn " in b.code
    ]
    lines = [line[2:] for line in console.code.splitlines() if line.startswith("$ ")]
    return [shlex.split(line) for line in lines]


@pytest.mark.parametrize("config", ["module", "file"])
def test_the_documented_gunicorn_recipe_exports_every_workers_telemetry(
    config: str,
    tmp_path: Path,
    servers: list[Server],
    rotel_collector: RotelCollector,
    otlp_sink: OtlpSink,
) -> None:
    """docs/prefork.md's app.py under its console commands (``-c python:otelkit.gunicorn``)
    or its gunicorn.conf.py, the endpoint pointed at the test's Collector."""
    for name, code in recipe_files(PREFORK_DOC).items():
        (tmp_path / name).write_text(code)
    export, gunicorn = _recipe_commands()
    assert export[0] == "export"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELKIT"))}
    env.update(arg.split("=", 1) for arg in export[1:])
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = rotel_collector.http_endpoint
    port = free_port()
    env["GUNICORN_CMD_ARGS"] = f"--bind 127.0.0.1:{port} --no-control-socket"
    assert gunicorn[:3] == ["gunicorn", "-c", "python:otelkit.gunicorn"], gunicorn
    argv = [sys.executable, "-m", *gunicorn]
    if config == "file":
        argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"]
    server = Server(argv, env, port, tmp_path / "gunicorn.log", cwd=tmp_path)
    servers.append(server)
    server.wait_serving()
    count = 40
    for n in range(count):
        assert server.get(f"/page/{n}") == "ok"
    assert server.terminate() < EXIT_BOUND, server.tail()
    assert server.process.returncode == 0, server.tail()

    def counted() -> int:  # the last cumulative value of each worker
        last = {r["service.instance.id"]: v for r, _, v in otlp_sink.metric_points("web.requests")}
        return sum(last.values())

    count += 1  # wait_serving's GET /
    wait_until(lambda: counted() >= count, timeout=30)
    points = otlp_sink.metric_points("web.requests")
    assert counted() == count, points
    workers = {resource["process.pid"] for resource, _, _ in points}
    assert server.process.pid not in workers and workers
    assert {resource["service.name"] for resource, _, _ in points} == {"web"}

    def handled() -> list[tuple[dict[str, Any], Any]]:  # spans travel apart from metrics
        return [(r, span) for r, span in otlp_sink.spans() if span.name == "handle"]

    wait_until(handled, timeout=30)
    assert {r["process.pid"] for r, _ in handled()} <= workers
    _assert_collector_accepted_everything(rotel_collector)


# The master's SIGTERM reaching a worker before gunicorn has installed the worker's
# handlers: simulated deterministically by the first worker signalling itself in post_fork.
TERM_IN_POST_FORK = """
import os
import signal
from pathlib import Path

from otelkit.gunicorn import on_exit, on_starting, pre_fork, worker_exit
from otelkit.gunicorn import post_fork as otelkit_post_fork


def post_fork(server, worker):
    otelkit_post_fork(server, worker)
    marker = Path(os.environ["TEST_FIRST_WORKER"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGTERM)
"""


def test_gunicorn_worker_leaves_on_a_sigterm_that_arrives_before_its_handlers(
    tmp_path: Path, servers: list[Server]
) -> None:
    config = tmp_path / "gunicorn_conf.py"
    config.write_text(TERM_IN_POST_FORK)
    marker = tmp_path / "first-worker"
    closed = f"http://127.0.0.1:{free_port()}"
    server = _gunicorn(
        tmp_path,
        closed,
        "-w",
        "1",
        "-k",
        "sync",
        env={"TEST_FIRST_WORKER": str(marker)},
        config=str(config),
    )
    servers.append(server)
    server.wait_serving()
    first = int(marker.read_text())
    # Lost, the signal would leave the first worker serving until the master stops it.
    wait_until(lambda: f"Worker exiting (pid: {first})" in server.output(), timeout=20)
    assert int(server.get("/pid")) != first
    assert server.terminate() < EXIT_BOUND, server.tail()
    assert server.process.returncode == 0, server.tail()


# ---- uvicorn ------------------------------------------------------------------------------


def _uvicorn(tmp_path: Path, endpoint: str, workers: int = 2) -> Server:
    port = free_port()
    argv = [sys.executable, "serve_uvicorn.py", str(port), str(workers)]
    return Server(argv, _environment(endpoint), port, tmp_path / "uvicorn.log")


def test_uvicorn_workers_deliver_every_request_and_their_lifespan_shutdown(
    tmp_path: Path, servers: list[Server], rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    server = _uvicorn(tmp_path, rotel_collector.http_endpoint)
    servers.append(server)
    server.wait_serving()
    relay_dir = _relay_dir(server)
    served = _drive(server, 200)
    workers = set(served.values())
    seconds = server.terminate()
    assert seconds < EXIT_BOUND, server.tail()
    assert server.process.returncode == 0, server.tail()
    _assert_every_request_once(otlp_sink, served, server.process.pid, rotel_collector)

    def shutdown_records() -> collections.Counter[int]:
        return collections.Counter(
            proto_attributes(record.attributes)[SHUTDOWN]
            for _, record in otlp_sink.logs()
            if SHUTDOWN in proto_attributes(record.attributes)
        )

    with contextlib.suppress(TimeoutError):
        wait_until(lambda: set(shutdown_records()) >= workers, timeout=10)
    assert set(shutdown_records()) >= workers, (shutdown_records(), workers, server.tail())
    assert set(shutdown_records().values()) == {1}
    assert not relay_dir.exists()
