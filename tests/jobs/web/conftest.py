"""Fixtures of the dashboard tests: the app served by a real uvicorn on loopback, a small
HTTP client that keeps cookies, and a store holding failed jobs with tracebacks."""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed")
import uvicorn
from opentelemetry.sdk.trace import TracerProvider

from otelkit.jobs import Job, JobStore
from otelkit.jobs.web import app
from otelkit.testing import wait_until


@dataclass
class Response:
    status: int
    body: str
    headers: dict[str, str]


@dataclass
class Client:
    """HTTP to one server, keeping the cookies it sets (like a browser would)."""

    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, *, form: dict[str, str] | None = None, **headers: str
    ) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = {"Accept": "text/html", **self.headers, **headers}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=sent)
            raw = conn.getresponse()
            text = raw.read().decode()
            for name, value in raw.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key] = rest.split(";", 1)[0]
            return Response(raw.status, text, {k.lower(): v for k, v in raw.getheaders()})
        finally:
            conn.close()

    def get(self, path: str, **headers: str) -> Response:
        return self.request("GET", path, **headers)

    def post(self, path: str, form: dict[str, str], **headers: str) -> Response:
        return self.request("POST", path, form=form, **headers)

    def csrf(self, page: str = "/") -> str:
        """The CSRF token of a page's forms (loads the page, which sets the cookie)."""
        body = self.get(page).body
        match = re.search(r'name="csrf" value="([^"]+)"', body)
        assert match, f"no CSRF field on {page}"
        return match.group(1)


@dataclass
class Served:
    url: str
    host: str
    port: int

    def client(self, **headers: str) -> Client:
        return Client(self.host, self.port, headers=dict(headers))


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Serve an ASGI app with uvicorn in a thread on loopback; stopped at the end."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(application: Any, host: str = "127.0.0.1") -> Served:
        server = uvicorn.Server(uvicorn.Config(application, host=host, port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        wait_until(lambda: server.started or not thread.is_alive(), timeout=30)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        near = "127.0.0.1" if host == "0.0.0.0" else host  # the wildcard is reached on loopback
        return Served(f"http://{near}:{port}", near, port)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def traced_store(db_url: str, make_store: Callable[..., JobStore]) -> JobStore:
    """A store whose attempts are sampled (so failed attempts record their trace id)."""
    return make_store(db_url, tracer_provider=TracerProvider())


@pytest.fixture
def failing_job() -> Callable[..., Any]:
    """Register a job function that raises on every attempt (one attempt allowed)."""

    def register(store: JobStore, *, name: str = "charge", queue: str = "billing") -> Any:
        @store.job(name=name, queue=queue, max_attempts=1)
        def charge(job: Job) -> None:
            raise ValueError(f"card {job.data['card']} declined")

        return charge

    return register


@pytest.fixture
def failed(traced_store: JobStore, failing_job: Callable[..., Any]) -> str:
    """The id of a failed job (``charge`` on queue ``billing``, data ``{"card": "4000"}``)."""
    charge = failing_job(traced_store)
    job_id: str = charge.enqueue({"card": "4000"})
    charge.run(job_id)
    return job_id


@pytest.fixture
def dashboard() -> Callable[..., Any]:
    """The app with the live refresh switched off (tests read pages, not timers)."""

    def make(store: JobStore, **options: Any) -> Any:
        options.setdefault("refresh_seconds", 0)
        return app(store, **options)

    return make
