"""The jobs dashboard: queues, jobs, one job's attempts and traces, periodic schedules;
retry, cancel, pause and resume (``pip install 'otelkit[web]'``).

``app(store)`` returns an ASGI application to mount in your own Starlette or FastAPI
application; ``otelkit jobs web --db URL`` serves it on 127.0.0.1. See ``docs/jobs-web.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otelkit.jobs.web._app import app

__all__ = ["app"]


# Handed on lazily (PEP 562): `otelkit jobs` imports this package for its command line,
# which must work without the `web` extra (Starlette, Jinja2) installed.
def __getattr__(name: str) -> Any:
    if name != "app":
        raise AttributeError(f"module 'otelkit.jobs.web' has no attribute {name!r}")
    try:
        from otelkit.jobs.web import _app
    except ImportError as exc:
        from otelkit._extras import missing

        module = exc.name or "starlette"
        raise missing(module, exc, extra="web", needed_by="otelkit.jobs.web") from exc
    value = getattr(_app, name)
    globals()[name] = value
    return value
