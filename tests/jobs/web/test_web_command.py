"""``otelkit jobs web`` as a user runs it: a uvicorn server in its own process on loopback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed")

_WITHOUT_STARLETTE = "import sys; sys.modules['starlette'] = None\n"


def test_without_the_web_extra_the_error_says_how_to_install_it() -> None:
    code = _WITHOUT_STARLETTE + (
        "import otelkit.jobs.web as web\n"
        "try:\n    web.app\nexcept ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert "needs starlette" in result.stdout and "pip install 'otelkit[web]'" in result.stdout
    cli = _WITHOUT_STARLETTE + (
        "import sys; from otelkit._cli import main\nsys.exit(main(['jobs', 'web', '--demo']))\n"
    )
    result = subprocess.run([sys.executable, "-c", cli], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "install it with: pip install 'otelkit[web]'" in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _command(*args: str) -> Iterator[str]:
    """Run ``otelkit jobs web ARGS`` until it prints its address; yield the address."""
    env = {k: v for k, v in os.environ.items() if k != "OTELKIT_JOBS_WEB_TOKEN"}
    command = [sys.executable, "-m", "otelkit", "jobs", "web", "--port", str(_free_port()), *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            address = None
            for line in process.stdout:  # bounded: on an error the process exits, closing it
                match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
                if match:
                    address = match.group(1)
                    break
            assert address, process.stderr.read()
            _wait_listening(address)
            yield address
        finally:
            process.terminate()
            process.wait(30)


def _wait_listening(address: str) -> None:
    from otelkit.testing import wait_until

    host, port = address.removeprefix("http://").rstrip("/").split(":")

    def answers() -> bool:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return False
        return True

    wait_until(answers, timeout=30)


def _get(url: str) -> str:
    request = urllib.request.Request(url, headers={"Accept": "text/html"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.read().decode())


def test_the_command_serves_a_store_read_only_on_loopback(db_url, make_store) -> None:
    store = make_store(db_url)
    job_id = store.job(name="ship", queue="mail")(lambda job: "sent").enqueue()
    with _command(
        "--db", db_url, "--read-only", "--trace-url", "https://t.example/{trace_id}"
    ) as url:
        queues = _get(url)
        assert '<tr data-queue="mail"' in queues and 'id="read-only"' in queues
        assert job_id in _get(url + "jobs?queue=mail")


def test_the_demo_needs_no_database_and_shows_failed_jobs_with_tracebacks() -> None:
    with _command("--demo") as url:
        failed = _get(url + "jobs?state=failed")
        ids = re.findall(r'<td class="id"><a href="/jobs/([0-9a-f]+)">', failed)
        assert len(ids) == 2
        job = _get(url + f"jobs/{ids[0]}")
        assert "ValueError: card 4000-0000-0000-" in job and "Traceback" in job
        assert 'class="trace-link"' in job
        assert '<tr data-queue="mail" class="paused">' in _get(url)


def test_the_command_says_how_to_name_the_database() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OTELKIT_JOBS_DB"}
    result = subprocess.run(
        [sys.executable, "-m", "otelkit", "jobs", "web"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2 and "--db is required" in result.stderr
