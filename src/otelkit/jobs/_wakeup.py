"""Waking idle workers: PostgreSQL ``LISTEN``/``NOTIFY``, and an in-process signal.

The jobs table's triggers (see :mod:`otelkit.jobs._schema`) call ``pg_notify`` on the
channel :data:`CHANNEL` whenever rows become waiting (an enqueue, a retry, a release, an
operator's retry), once per queue and statement, with the payload ``"<queue> <seconds>"``:
how long after the database's now the earliest of those rows is due. The notification is
sent on commit, so a worker that hears it finds the rows. It only signals: the claim is
still the one atomic statement, and polling stays as the fallback.

A :class:`Listener` owns one dedicated psycopg connection (autocommit) in a daemon thread,
waits for notifications with a bounded timeout (so it notices being closed), and
re-establishes a dropped connection with exponential backoff; after every (re)connection it
asks its worker to poll once, so that nothing enqueued while it was away is missed.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable

import sqlalchemy as sa

from otelkit._errors import report_internal_error
from otelkit._threads import start_daemon

__all__ = ["CHANNEL", "Listener", "parse_payload"]

CHANNEL = "otelkit_jobs"
APPLICATION_NAME = "otelkit-jobs-listener"
"""``application_name`` of the listening connection (``pg_stat_activity`` shows it)."""
_WAIT = 1.0  # seconds: the bounded wait for notifications (how soon close() is noticed)
_MAX_BACKOFF = 30.0

Notify = Callable[[str, float], None]
"""``on_notify(queue, seconds_until_due)``."""


def parse_payload(payload: str) -> tuple[str, float] | None:
    """``(queue, seconds until due)`` of a notification payload, or None if malformed."""
    queue, _, delay = payload.rpartition(" ")
    try:
        seconds = float(delay)
    except ValueError:
        return None
    if not queue or not math.isfinite(seconds):
        return None
    return queue, seconds


class Listener:
    """``LISTEN`` on a dedicated connection; calls ``on_notify`` and, after each
    (re)connection, ``on_connect`` (the worker polls then: nothing is missed)."""

    def __init__(
        self,
        url: sa.URL,
        *,
        on_notify: Notify,
        on_connect: Callable[[], None],
        name: str,
    ) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_notify = on_notify
        self._on_connect = on_connect
        self.application_name = f"{APPLICATION_NAME} {name}"[:63]
        self._closed = threading.Event()
        self._connected = threading.Event()
        self._rng = random.Random()
        self.reconnects = 0
        """How many times the connection was re-established after a failure."""
        self._thread = start_daemon(self._run, name="otelkit-jobs-listen")

    @property
    def connected(self) -> bool:
        """Whether the listening connection is up (notifications arrive)."""
        return self._connected.is_set()

    def close(self) -> None:
        """Stop listening; the thread exits within about a second."""
        self._closed.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        import psycopg

        failures = 0
        while not self._closed.is_set():
            try:
                with psycopg.connect(
                    self._dsn,
                    autocommit=True,
                    application_name=self.application_name,
                    connect_timeout=10,
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if failures:
                        self.reconnects += 1
                    failures = 0
                    self._connected.set()
                    self._on_connect()
                    while not self._closed.is_set():
                        for notify in conn.notifies(timeout=_WAIT):
                            parsed = parse_payload(notify.payload)
                            if parsed is not None:
                                self._on_notify(*parsed)
            except Exception as exc:  # noqa: BLE001 - connection lost: back off, reconnect
                self._connected.clear()
                if self._closed.is_set():
                    return
                report_internal_error("jobs.listen", exc)
                failures += 1
                pause = min(_MAX_BACKOFF, 0.05 * 2 ** min(failures, 16))
                self._closed.wait(pause * (0.5 + self._rng.random() / 2))
            finally:
                self._connected.clear()
