"""A WSGI application for gunicorn: ``GET /req/<n>`` opens a span, logs one record and adds
1 to a counter, all tagged ``prefork.request=<n>``, and answers with the worker's pid."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics, trace

import otelkit

REQUEST = "prefork.request"

otelkit.configure(service_name="prefork-wsgi")  # a relay child in a worker (host if preloaded)
tracer = trace.get_tracer("prefork.app")
requests = metrics.get_meter("prefork.app").create_counter("prefork.requests")
log = logging.getLogger("prefork.app")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/relay":  # where this worker relays to (OTELKIT_RELAY, from its master)
        start_response("200 OK", [("content-type", "text/plain")])
        return [os.environ.get("OTELKIT_RELAY", "").encode()]
    if not path.startswith("/req/"):
        start_response("200 OK", [("content-type", "text/plain")])
        return [str(os.getpid()).encode()]
    n = int(path.rsplit("/", 1)[-1])
    with tracer.start_as_current_span("prefork.handle", attributes={REQUEST: n}):
        log.warning("handled request %d", n, extra={REQUEST: n})
        requests.add(1, {REQUEST: n})
    start_response("200 OK", [("content-type", "text/plain")])
    return [str(os.getpid()).encode()]
