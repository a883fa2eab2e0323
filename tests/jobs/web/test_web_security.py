"""The dashboard's safety: CSRF on every action, the bearer token, loopback only without
one, read-only mode, and everything a job holds rendered as text."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from urllib.parse import quote

import pytest

from otelkit.errors import InvalidOptionError
from otelkit.jobs import JobState
from otelkit.jobs.web._security import check_bind, is_loopback, resolve_token

TOKEN = "a-long-random-token-for-tests-0123456789"


def test_an_action_without_the_csrf_token_is_refused_and_changes_nothing(
    traced_store, failed, dashboard, serve
) -> None:
    client = serve(dashboard(traced_store)).client()
    client.get(f"/jobs/{failed}")  # the page sets the CSRF cookie
    missing = client.post("/actions/retry", {"job": failed})
    wrong = client.post("/actions/retry", {"job": failed, "csrf": "guessed"})
    assert missing.status == wrong.status == 403 and "CSRF" in missing.body
    stranger = serve(dashboard(traced_store)).client()  # no cookie at all
    token = client.csrf(f"/jobs/{failed}")
    assert stranger.post("/actions/retry", {"job": failed, "csrf": token}).status == 403
    assert traced_store.get(failed).state is JobState.FAILED
    done = client.post("/actions/retry", {"job": failed, "csrf": token})
    assert done.status == 303 and traced_store.get(failed).state is JobState.QUEUED


def test_a_cross_site_origin_is_refused_even_with_the_csrf_token(
    traced_store, failed, dashboard, serve
) -> None:
    client = serve(dashboard(traced_store)).client()
    token = client.csrf(f"/jobs/{failed}")
    response = client.post(
        "/actions/retry", {"job": failed, "csrf": token}, Origin="https://evil.example"
    )
    assert response.status == 403 and traced_store.get(failed).state is JobState.FAILED


def test_with_a_token_a_wrong_or_missing_bearer_is_refused_and_changes_nothing(
    traced_store, failed, dashboard, serve
) -> None:
    served = serve(dashboard(traced_store, token=TOKEN), host="0.0.0.0")
    wrong = served.client(Authorization="Bearer not-the-token")
    assert wrong.get("/").status == 401
    assert wrong.post("/actions/retry", {"job": failed, "csrf": "x"}).status == 401
    anonymous = served.client()
    assert anonymous.post("/actions/retry", {"job": failed, "csrf": "x"}).status == 401
    redirected = anonymous.get("/")
    assert redirected.status == 303 and redirected.headers["location"] == "/login"
    assert traced_store.get(failed).state is JobState.FAILED
    right = served.client(Authorization=f"Bearer {TOKEN}")
    token = right.csrf(f"/jobs/{failed}")
    assert right.post("/actions/retry", {"job": failed, "csrf": token}).status == 303
    assert traced_store.get(failed).state is JobState.QUEUED


def test_the_token_comes_from_the_environment_when_not_given(
    traced_store, dashboard, serve, monkeypatch
) -> None:
    monkeypatch.setenv("OTELKIT_JOBS_WEB_TOKEN", TOKEN)
    served = serve(dashboard(traced_store))
    assert served.client().get("/", Accept="text/plain").status == 401
    assert served.client(Authorization=f"Bearer {TOKEN}").get("/").status == 200


def test_signing_in_with_the_token_sets_a_cookie_that_is_not_the_token(
    traced_store, dashboard, serve
) -> None:
    browser = serve(dashboard(traced_store, token=TOKEN)).client()
    csrf = browser.csrf("/login")
    refused = browser.post("/login", {"csrf": csrf, "token": "wrong-token-wrong-token"})
    assert refused.status == 401 and browser.get("/").status == 303
    assert browser.post("/login", {"csrf": csrf, "token": TOKEN}).status == 303
    assert browser.get("/").status == 200
    assert TOKEN not in "".join(browser.cookies.values())


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if is_loopback(address) else address


def test_without_a_token_only_loopback_clients_and_host_names_are_served(
    traced_store, dashboard, serve
) -> None:
    served = serve(dashboard(traced_store), host="0.0.0.0")
    assert served.client().get("/").status == 200
    # A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) is refused.
    assert served.client(Host="attacker.example").get("/").status == 403
    address = _outside_address()
    if address is not None:
        from_outside = served.client()
        from_outside.host = address
        assert from_outside.get("/").status == 403


def test_binding_beyond_loopback_needs_a_token() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(InvalidOptionError, match="OTELKIT_JOBS_WEB_TOKEN"):
        check_bind("0.0.0.0", None)
    with pytest.raises(InvalidOptionError, match="at least 16 characters"):
        resolve_token("short")


def test_the_command_refuses_a_public_address_without_a_token(tmp_path, traced_store) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OTELKIT_JOBS_WEB_TOKEN"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "otelkit",
            "jobs",
            "web",
            "--db",
            traced_store.engine.url.render_as_string(hide_password=False),
            "--host",
            "0.0.0.0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "refusing to listen on '0.0.0.0' without a token" in result.stderr


def test_read_only_offers_no_action_and_accepts_none(
    traced_store, failed, dashboard, serve
) -> None:
    traced_store.job(name="ship", queue="mail")(lambda job: None).enqueue()
    client = serve(dashboard(traced_store, read_only=True)).client()
    pages = [client.get(p).body for p in ("/", "/jobs", f"/jobs/{failed}")]
    assert all('<form method="post"' not in body for body in pages)
    assert all('id="read-only"' in body for body in pages)
    assert "Retry all matching" not in pages[1]
    assert client.get("/bulk?action=retry&state=failed").status == 403
    # Even a request carrying a valid CSRF pair is refused.
    client.cookies["otelkit_jobs_csrf"] = "pair"
    for verb, form in (("retry", {"job": failed}), ("pause", {"queue": "mail"})):
        assert client.post(f"/actions/{verb}", {**form, "csrf": "pair"}).status == 403
    assert traced_store.get(failed).state is JobState.FAILED
    assert traced_store.paused_queues() == []


XSS = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_what_a_job_holds_is_shown_as_text(traced_store, dashboard, serve) -> None:
    store = traced_store

    @store.job(name=f"n{XSS}", queue=f"q{XSS}", max_attempts=1)
    def evil(job) -> None:
        raise ValueError(job.data["payload"])

    job_id = evil.enqueue({"payload": XSS})
    evil.run(job_id)
    client = serve(dashboard(store)).client()
    bodies = [
        client.get(path).body
        for path in (
            "/",
            "/jobs",
            "/jobs?state=failed",
            f"/jobs/{job_id}",
            f"/bulk?action=retry&q={quote(XSS)}",
        )
    ]
    for body in bodies:
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        # The only scripts are the dashboard's own file; a CSP forbids inline ones anyway.
        assert re.findall(r"<script[^>]*>", body) == ['<script src="/static/refresh.js" defer>']
    response = client.get(f"/jobs/{job_id}")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in response.body
