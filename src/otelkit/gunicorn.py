"""Gunicorn server hooks: the master is the relay host, every worker relays to it.

Point gunicorn at this module, or import its hooks into your own ``gunicorn.conf.py``::

    gunicorn -c python:otelkit.gunicorn -w 4 app:app

    # gunicorn.conf.py
    from otelkit.gunicorn import on_exit, on_starting, post_fork, pre_fork, worker_exit

The master calls ``otelkit.configure(relay=True)`` in ``on_starting`` (every other option
from the ``OTEL_*`` environment, which gunicorn's ``-e NAME=value`` also sets). Workers are
forked from it, so they relay to it with no call of their own; an application that calls
``otelkit.configure(service_name=...)`` when it is imported in a worker becomes a relay
child under that name. ``pre_fork`` and ``post_fork`` keep a new worker's signals blocked
until it has installed its own handlers: gunicorn's master sends SIGTERM to a worker it is
still forking when it stops, and before the worker's handlers exist that signal would be
lost (the master would wait out ``--graceful-timeout`` for it). ``worker_exit`` flushes a leaving worker (recycled by
``max_requests``, or stopped by the master's SIGTERM, SIGQUIT or SIGINT); ``on_exit``
shuts the master down (bounded by ``shutdown_timeout``) once every worker is gone.

With ``--preload`` gunicorn imports the application before any hook runs. Importing this
module (which gunicorn does while it reads its configuration, earlier still) therefore sets
``OTELKIT_RELAY_HOST=1`` unless it is already set: a ``configure()`` the preloaded
application makes in the master then starts the relay host itself, and its tracers and
instruments stay those the forked workers use. ``post_fork`` removes the variable in each
worker, whose own ``configure()`` is that of a relay child. See ``docs/prefork.md``.

Only names gunicorn knows as server hooks are public here: gunicorn reads every module-level
name of a configuration module that matches one of its settings.
"""

from __future__ import annotations

import os
from typing import Any

import otelkit
from otelkit._forksignals import hold_signals, hold_signals_in_next_child, release_held_signals

__all__ = ["on_exit", "on_starting", "post_fork", "pre_fork", "worker_exit"]

_RELAY_HOST_ENV = "OTELKIT_RELAY_HOST"

os.environ.setdefault(_RELAY_HOST_ENV, "1")


def on_starting(server: Any) -> None:
    """Master, before the listeners open and the first worker forks: become the relay host.

    Keeps a relay host that is already running (one a preloaded application configured, or
    your own ``on_starting`` with explicit options); otherwise configures one from the
    environment.
    """
    telemetry = otelkit.current()
    if telemetry is None or telemetry.relay_host is None:
        otelkit.configure(relay=True)


def pre_fork(server: Any, worker: Any) -> None:
    """Master, right before forking a worker: the worker starts with its signals blocked,
    until gunicorn has installed its handlers."""
    hold_signals_in_next_child()
    _release_signals_after_init_signals(worker)  # the child inherits this worker object


def post_fork(server: Any, worker: Any) -> None:
    """Worker, right after the fork: its own ``configure()`` makes it a relay child, and
    its signals stay blocked until gunicorn has installed the worker's handlers."""
    if os.environ.get(_RELAY_HOST_ENV) == "1":
        del os.environ[_RELAY_HOST_ENV]
    hold_signals()  # already held after pre_fork; without it, at least from here on
    _release_signals_after_init_signals(worker)


def _release_signals_after_init_signals(worker: Any) -> None:
    install_handlers = worker.init_signals
    if getattr(install_handlers, "_otelkit_releases_signals", False):
        return

    def init_signals_then_release() -> None:
        try:
            install_handlers()
        finally:
            release_held_signals()

    init_signals_then_release._otelkit_releases_signals = True  # type: ignore[attr-defined]
    worker.init_signals = init_signals_then_release


def worker_exit(server: Any, worker: Any) -> None:
    """Worker, leaving its main loop: hand everything it buffered to the master.

    A flush, not a shutdown: records that a gthread worker's request threads still emit
    after it are flushed by the exit-time shutdown, which runs once those threads have
    ended.
    """
    if worker.pid != os.getpid():
        return  # the master reports a worker that was already gone: nothing of ours to flush
    telemetry = otelkit.current()
    if telemetry is not None:
        telemetry.force_flush()


def on_exit(server: Any) -> None:
    """Master, after every worker has exited: flush, stop the relay and export the rest."""
    telemetry = otelkit.current()
    if telemetry is not None:
        telemetry.shutdown()
