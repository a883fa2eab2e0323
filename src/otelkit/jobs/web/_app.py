"""The dashboard as an ASGI application: pages, actions and the access guard.

Pages are rendered on the server (Jinja2, autoescaped); the only script refreshes the
queues table in place. Every action goes through the :class:`~otelkit.jobs.JobStore` methods
the API and the CLI use (``retry``, ``cancel``, ``pause``, ``resume``), so each one is a
transition with its span event and metric.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.jobs._model import JobState
from otelkit.jobs._store import JobStore
from otelkit.jobs.web import _queries as q
from otelkit.jobs.web._security import (
    AUTH_COOKIE,
    CSRF_COOKIE,
    CSRF_FIELD,
    is_loopback,
    new_csrf_token,
    resolve_token,
    same_origin,
    same_secret,
)

__all__ = ["DEFAULT_TRACE_URL", "app"]

DEFAULT_TRACE_URL = "http://localhost:16686/trace/{trace_id}"
"""Jaeger's trace page (the project's docker-compose.yml runs Jaeger on 16686)."""
BULK_LIMIT = 10_000
"""Jobs one bulk action changes at most (each through its own store call)."""
_MAX_FORM = 64 * 1024
_MAX_SHOWN = 100_000  # characters of a job's data or result shown on its page
_STATIC = files("otelkit.jobs.web") / "static"
_TEMPLATES = files("otelkit.jobs.web") / "templates"
_RETRYABLE = (JobState.FAILED, JobState.CANCELLED)
_CANCELLABLE = (JobState.QUEUED, JobState.RETRYING, JobState.RUNNING)
_NOTICES = {
    "retried": "Queued again.",
    "not-retried": "Not retried: only failed or cancelled jobs can be retried.",
    "cancelled": "Cancelled.",
    "not-cancelled": "Not cancelled: only queued, retrying or running jobs can be cancelled.",
    "paused": "Queue paused: workers claim none of its jobs until it is resumed.",
    "resumed": "Queue resumed.",
    "unchanged": "Nothing changed (it was already so).",
    "bulk": "Bulk action done.",
}


def app(
    store: JobStore,
    *,
    trace_url: str = DEFAULT_TRACE_URL,
    read_only: bool = False,
    token: str | None = None,
    refresh_seconds: float = 5.0,
    page_size: int = 50,
) -> Starlette:
    """The jobs dashboard for ``store`` as an ASGI application (Starlette).

    Mount it in your own Starlette or FastAPI application
    (``Mount("/jobs", app=otelkit.jobs.web.app(store))``) or serve it with
    ``otelkit jobs web``. ``trace_url``: the link to an attempt's trace, with
    ``{trace_id}`` in it (Jaeger's by default). ``read_only``: no action is offered or
    accepted. ``token`` (default ``$OTELKIT_JOBS_WEB_TOKEN``): when set, every request must
    carry it (``Authorization: Bearer ...``, or sign in once in the browser); when not set,
    only loopback clients are served. ``refresh_seconds``: how often the queues page
    refreshes its table (0: never).
    """
    if not isinstance(store, JobStore):
        raise OptionTypeError(
            f"jobs web: store must be an otelkit.jobs.JobStore, got {type(store).__name__}"
        )
    _check_trace_url(trace_url)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 500:
        raise InvalidOptionError(f"jobs web: page_size must be an int in 1..500, got {page_size!r}")
    if not isinstance(refresh_seconds, (int, float)) or refresh_seconds < 0:
        raise InvalidOptionError(
            f"jobs web: refresh_seconds must be >= 0 (0: no refresh), got {refresh_seconds!r}"
        )
    secret = resolve_token(token)
    dashboard = _Dashboard(
        store,
        token=secret,
        trace_url=trace_url,
        read_only=bool(read_only),
        refresh_seconds=float(refresh_seconds),
        page_size=page_size,
    )
    routes = [
        Route("/", dashboard.queues_page),
        Route("/jobs", dashboard.jobs_page),
        Route("/jobs/{job_id:path}", dashboard.job_page),
        Route("/schedules", dashboard.schedules_page),
        Route("/bulk", dashboard.bulk_page),
        Route("/actions/{verb}", dashboard.action, methods=["POST"]),
        Route("/login", dashboard.login, methods=["GET", "POST"]),
        Mount("/static", app=StaticFiles(directory=str(_STATIC)), name="static"),
    ]
    starlette = Starlette(routes=routes)
    starlette.add_middleware(_Guard, token=secret)
    return starlette


def _check_trace_url(template: str) -> None:
    if not isinstance(template, str) or not template.startswith(("http://", "https://")):
        raise InvalidOptionError(
            f"jobs web: trace_url must be an http(s) URL with {{trace_id}} in it, such as "
            f"{DEFAULT_TRACE_URL!r}, got {template!r}"
        )
    try:
        filled = template.format(trace_id="0" * 32)
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidOptionError(
            f"jobs web: trace_url may name only {{trace_id}} ({exc!r} in {template!r}); "
            f"example: {DEFAULT_TRACE_URL!r}"
        ) from None
    if "0" * 32 not in filled:
        raise InvalidOptionError(
            f"jobs web: trace_url must contain {{trace_id}}, got {template!r}; "
            f"example: {DEFAULT_TRACE_URL!r}"
        )


def _auth_cookie_value(token: str) -> str:
    """What the sign-in cookie holds: derived from the token, not the token itself."""
    return hashlib.sha256(b"otelkit-jobs-web\0" + token.encode()).hexdigest()


class _Guard:
    """Serves a request only if it may see the dashboard (see ``_security``)."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self._app = app
        self._token = token
        self._cookie = None if token is None else _auth_cookie_value(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["otelkit_token"] = self._token is not None
        await self._app(scope, receive, send)

    def _refusal(self, request: Request) -> Response | None:
        if self._token is None:
            client = request.client.host if request.client else None
            if not is_loopback(client) or not is_loopback(request.headers.get("host")):
                return PlainTextResponse(
                    "This dashboard serves loopback clients only (no token is configured). "
                    "Set OTELKIT_JOBS_WEB_TOKEN to serve others.",
                    status_code=403,
                )
            return None
        assert self._cookie is not None
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
        if bearer is not None:
            if same_secret(bearer, self._token):
                return None
            return _unauthorized("wrong bearer token")
        if same_secret(request.cookies.get(AUTH_COOKIE), self._cookie):
            return None
        relative = request.url.path[len(request.scope.get("root_path", "")) :]
        if relative == "/login" or relative.startswith("/static/"):
            return None
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(f"{request.scope.get('root_path', '')}/login", 303)
        return _unauthorized("a token is required")


def _unauthorized(why: str) -> Response:
    return PlainTextResponse(
        f"401: {why} (send 'Authorization: Bearer <token>' or sign in at /login)",
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="otelkit jobs"'},
    )


class _Dashboard:
    """The pages and actions over one store."""

    def __init__(
        self,
        store: JobStore,
        *,
        token: str | None,
        trace_url: str,
        read_only: bool,
        refresh_seconds: float,
        page_size: int,
    ) -> None:
        self.store = store
        self.token = token
        self.engine = store.engine
        self.trace_url = trace_url
        self.read_only = read_only
        self.refresh_seconds = refresh_seconds
        self.page_size = page_size
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
            autoescape=True,  # every value a job holds is shown as text
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = _when
        self.env.filters["age"] = _age
        self.env.globals["trace_link"] = self.trace_link
        self.database = self.engine.url.render_as_string(hide_password=True)

    def trace_link(self, trace_id: str | None) -> str | None:
        """The trace page of ``trace_id`` (32 hex digits), or None."""
        if (
            not trace_id
            or len(trace_id) != 32
            or not all(c in "0123456789abcdef" for c in trace_id)
        ):
            return None
        return self.trace_url.format(trace_id=trace_id)

    # -- rendering -------------------------------------------------------------------------
    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        csrf = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
        base = request.scope.get("root_path", "")
        notice = _NOTICES.get(request.query_params.get("notice", ""))
        body = self.env.get_template(template).render(
            base=base,
            csrf=csrf,
            csrf_field=CSRF_FIELD,
            read_only=self.read_only,
            database=self.database,
            notice=notice,
            signed_in=request.scope.get("state", {}).get("otelkit_token", False),
            quote=_quote,
            **context,
        )
        response = HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            response.set_cookie(
                CSRF_COOKIE,
                csrf,
                path=base or "/",
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    # -- pages -----------------------------------------------------------------------------
    def queues_page(self, request: Request) -> Response:
        rows = q.queue_overview(self.engine)
        template = "_queues_table.html" if request.query_params.get("fragment") else "queues.html"
        return self.render(
            request,
            template,
            rows=rows,
            columns=q.COLUMNS,
            minutes=q.ACTIVITY_MINUTES,
            refresh_ms=int(self.refresh_seconds * 1000),
        )

    def jobs_page(self, request: Request) -> Response:
        try:
            flt = _filter(request.query_params)
            page = q.job_page(
                self.engine,
                flt,
                cursor=request.query_params.get("after") or None,
                limit=self.page_size,
            )
        except ValueError as exc:
            return self.render(request, "error.html", 400, message=str(exc))
        query = _filter_query(flt)
        return self.render(
            request,
            "jobs.html",
            page=page,
            flt=flt,
            states=[s.value for s in JobState],
            query=query,
            first_page=not request.query_params.get("after"),
            changed=_int_or_none(request.query_params.get("changed")),
        )

    def job_page(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        job = self.store.get(job_id)
        if job is None:
            return self.render(request, "error.html", 404, message=f"No job has the id {job_id!r}.")
        return self.render(
            request,
            "job.html",
            job=job,
            data=_shown(job.data),
            result=_shown(job.result),
            history=self.store.transitions(job_id),
            followups=q.followups(self.engine, job),
            retryable=job.state in _RETRYABLE,
            cancellable=job.state in _CANCELLABLE,
        )

    def schedules_page(self, request: Request) -> Response:
        return self.render(request, "schedules.html", rows=q.schedule_rows(self.engine))

    def bulk_page(self, request: Request) -> Response:
        verb = request.query_params.get("action", "")
        if verb not in ("retry", "cancel"):
            return self.render(request, "error.html", 400, message="action must be retry or cancel")
        if self.read_only:
            return self.render(request, "error.html", 403, message="This dashboard is read-only.")
        flt = _filter(request.query_params)
        up_to = q.db_time(self.engine)
        states = _RETRYABLE if verb == "retry" else _CANCELLABLE
        count = q.count_matching(self.engine, flt, states, up_to=up_to)
        return self.render(
            request,
            "confirm.html",
            verb=verb,
            flt=flt,
            count=count,
            limit=BULK_LIMIT,
            up_to=repr(up_to),
            states=[s.value for s in states if s in flt.chosen_states],
            query=_filter_query(flt),
        )

    # -- actions ---------------------------------------------------------------------------
    async def action(self, request: Request) -> Response:
        verb = request.path_params["verb"]
        if self.read_only:
            return PlainTextResponse("403: this dashboard is read-only", status_code=403)
        form = await _form(request)
        if form is None:
            return PlainTextResponse("413: form too large", status_code=413)
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            return PlainTextResponse("403: cross-site request refused", status_code=403)
        cookie = request.cookies.get(CSRF_COOKIE)
        if cookie is None or not same_secret(form.get(CSRF_FIELD), cookie):
            return PlainTextResponse(
                "403: missing or wrong CSRF token (reload the page and try again)",
                status_code=403,
            )
        handler = self._handler(verb)
        if handler is None:
            return PlainTextResponse(f"404: no action {verb!r}", status_code=404)
        try:
            target = await run_in_threadpool(handler, form)
        except (ValueError, KeyError) as exc:
            return self.render(request, "error.html", 400, message=str(exc))
        return RedirectResponse(request.scope.get("root_path", "") + target, status_code=303)

    def _handler(self, verb: str) -> Callable[[Mapping[str, str]], str] | None:
        if verb in ("retry", "cancel"):
            return lambda form: self._job_action(form, verb)
        if verb in ("pause", "resume"):
            return lambda form: self._queue_action(form, verb)
        return self._bulk if verb == "bulk" else None

    def _job_action(self, form: Mapping[str, str], verb: str) -> str:
        job_id = form["job"]
        done = self.store.retry(job_id) if verb == "retry" else self.store.cancel(job_id)
        notice = {"retry": "retried", "cancel": "cancelled"}[verb]
        return f"/jobs/{_quote(job_id)}?notice={'' if done else 'not-'}{notice}"

    def _queue_action(self, form: Mapping[str, str], verb: str) -> str:
        queue = form["queue"]
        changed = self.store.pause(queue) if verb == "pause" else self.store.resume(queue)
        return f"/?notice={(verb + 'd') if changed else 'unchanged'}"

    def _bulk(self, form: Mapping[str, str]) -> str:
        verb = form["verb"]
        if verb not in ("retry", "cancel"):
            raise ValueError("verb must be retry or cancel")
        flt = _filter(form)
        states = _RETRYABLE if verb == "retry" else _CANCELLABLE
        ids = q.bulk_ids(self.engine, flt, states, up_to=float(form["up_to"]), limit=BULK_LIMIT)
        act = self.store.retry if verb == "retry" else self.store.cancel
        changed = sum(1 for job_id in ids if act(job_id))
        query = _filter_query(flt)
        return f"/jobs?{query}{'&' if query else ''}notice=bulk&changed={changed}"

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return await run_in_threadpool(self.render, request, "login.html", error=None)
        guard_token = self.token
        form = await _form(request) or {}
        cookie = request.cookies.get(CSRF_COOKIE)
        if cookie is None or not same_secret(form.get(CSRF_FIELD), cookie):
            return PlainTextResponse("403: missing or wrong CSRF token", status_code=403)
        if guard_token is None or not same_secret(form.get("token"), guard_token):
            return self.render(request, "login.html", 401, error="Wrong token.")
        base = request.scope.get("root_path", "")
        response = RedirectResponse(base + "/", status_code=303)
        response.set_cookie(
            AUTH_COOKIE,
            _auth_cookie_value(guard_token),
            path=base or "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response


_SECURITY_HEADERS = {
    # No inline script or style can run, whatever a job's data holds.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Not "no-referrer": with it Chromium sends "Origin: null" on the dashboard's own forms.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


async def _form(request: Request) -> dict[str, str] | None:
    """The URL-encoded form of a POST (first value of each field); None if too large."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def _filter(params: Mapping[str, str]) -> q.JobFilter:
    raw_states = params.get("state", "")
    states: list[JobState] = []
    for part in raw_states.split(",") if raw_states else []:
        try:
            states.append(JobState(part))
        except ValueError:
            accepted = ", ".join(s.value for s in JobState)
            raise ValueError(f"unknown state {part!r} (accepted: {accepted})") from None
    return q.JobFilter(
        states=tuple(states),
        queue=params.get("queue", "").strip(),
        name=params.get("name", "").strip(),
        error=params.get("q", "").strip(),
    )


def _filter_query(flt: q.JobFilter) -> str:
    pairs = {
        "state": ",".join(s.value for s in flt.states),
        "queue": flt.queue,
        "name": flt.name,
        "q": flt.error,
    }
    return urlencode({k: v for k, v in pairs.items() if v})


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _quote(value: str) -> str:
    return quote(value, safe="")


def _shown(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    if len(text) > _MAX_SHOWN:
        return text[:_MAX_SHOWN] + f"\n… ({len(text) - _MAX_SHOWN} more characters not shown)"
    return text


def _when(value: datetime | float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, timezone.utc)
    text = value.astimezone(timezone.utc).isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z"


def _age(seconds: float | None) -> str:
    if not seconds or seconds <= 0:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"
