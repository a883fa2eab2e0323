"""Flush otelkit when an ASGI server shuts the application down.

uvicorn (and servers built on it) end a worker in a way that skips interpreter exit: when
it stops because of SIGTERM or SIGINT, ``Server.serve()`` restores the signal handlers that
were in place before it started and raises the captured signal again. In a ``--workers``
process, where the application (and so its ``otelkit.configure()``) is imported only after
uvicorn installed its handlers, the restored handler is the default one: the process dies
on the spot, ``atexit`` never runs, and what the application buffered last, such as records
logged during the lifespan shutdown, and its final metric collection, is lost.

:func:`flush_on_shutdown` wraps the application so that otelkit is shut down (flushed,
bounded by ``shutdown_timeout``) when the application has finished its lifespan shutdown
and before the server is told so: after it the server runs no application code, whatever
way the process then ends::

    app = otelkit.asgi.flush_on_shutdown(app)

An application that does not speak the lifespan protocol gets it from the wrapper (startup
acknowledged at once, otelkit shut down at shutdown), so the wrapper works for every
application as long as the server's lifespan is ``auto`` or ``on`` (uvicorn's default is
``auto``). See ``docs/prefork.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import otelkit

__all__ = ["flush_on_shutdown"]

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]

_SHUTDOWN_DONE = ("lifespan.shutdown.complete", "lifespan.shutdown.failed")


def flush_on_shutdown(app: _ASGIApp, *, timeout: float | None = None) -> _ASGIApp:
    """``app`` (ASGI 3), with ``otelkit.current().shutdown(timeout)`` run when its lifespan
    shutdown completes or fails, before the server hears of it.

    ``timeout`` defaults to the pipeline's ``shutdown_timeout``. HTTP and WebSocket scopes
    pass through untouched.
    """

    async def application(scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        received = False

        async def receive_message() -> _Message:
            nonlocal received
            received = True
            return await receive()

        async def send_message(message: _Message) -> None:
            if message.get("type") in _SHUTDOWN_DONE:
                await _shutdown(timeout)
            await send(message)

        try:
            await app(scope, receive_message, send_message)
        except Exception:
            if received:
                raise  # a lifespan the application runs failed: the server reports it
            await _serve_lifespan(receive, send, timeout)  # it does not speak lifespan
            return
        if not received:  # returned at once: it does not speak lifespan either
            await _serve_lifespan(receive, send, timeout)

    return application


async def _serve_lifespan(receive: _Receive, send: _Send, timeout: float | None) -> None:
    """The lifespan protocol for an application without one."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await _shutdown(timeout)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _shutdown(timeout: float | None) -> None:
    """Shut otelkit down off the event loop when there is an asyncio one (the flush may wait
    for a slow Collector up to its bound); inline under any other event loop."""
    telemetry = otelkit.current()
    if telemetry is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        telemetry.shutdown(timeout)
        return
    await loop.run_in_executor(None, telemetry.shutdown, timeout)
