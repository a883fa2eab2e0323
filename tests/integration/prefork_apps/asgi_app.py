"""An ASGI application for uvicorn ``--workers``: ``GET /req/<n>`` opens a span, logs one
record and adds 1 to a counter, all tagged ``prefork.request=<n>``, and answers with the
worker's pid. Its lifespan shutdown logs one record tagged ``prefork.shutdown=<pid>``."""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import metrics, trace

import otelkit
from otelkit.asgi import flush_on_shutdown

REQUEST = "prefork.request"
SHUTDOWN = "prefork.shutdown"

otelkit.configure(service_name="prefork-asgi")  # a relay child: OTELKIT_RELAY is inherited
tracer = trace.get_tracer("prefork.app")
requests = metrics.get_meter("prefork.app").create_counter("prefork.requests")
log = logging.getLogger("prefork.app")


async def _text(send: Any, text: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                log.warning("lifespan shutdown of %d", os.getpid(), extra={SHUTDOWN: os.getpid()})
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/relay":
        await _text(send, os.environ.get("OTELKIT_RELAY", ""))
        return
    if path.startswith("/req/"):
        n = int(path.rsplit("/", 1)[-1])
        with tracer.start_as_current_span("prefork.handle", attributes={REQUEST: n}):
            log.warning("handled request %d", n, extra={REQUEST: n})
            requests.add(1, {REQUEST: n})
    await _text(send, str(os.getpid()))


app = flush_on_shutdown(_app)
