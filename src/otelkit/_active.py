"""The process's active pipeline: the one :class:`~otelkit.Telemetry` that ``configure()``
installed, the one being shut down, and the relay this process serves.

State of its own so that the handle (which leaves it at shutdown), ``configure()`` (which
replaces it) and the process hooks (which flush it at exit, on SIGTERM and after a fork)
share it without importing each other.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otelkit._telemetry import Telemetry

__all__ = [
    "current",
    "current_in_fork_hook",
    "current_or_stopping",
    "hosting",
    "leave",
    "lock",
    "set_current",
    "set_hosting",
]

lock = threading.RLock()
"""Held while the active pipeline is read or replaced."""

_current: Telemetry | None = None
_stopping: Telemetry | None = None  # the handle being shut down, if any
_hosting: tuple[int, str] | None = None


def current() -> Telemetry | None:
    """The active :class:`Telemetry`, or None before ``configure()`` / after shutdown."""
    with lock:
        return _current


def current_in_fork_hook() -> Telemetry | None:
    """The active handle, read without the lock: in a fork hook another thread of the
    parent may have held the lock at the fork, and nobody would release it in the child."""
    return _current


def current_or_stopping() -> Telemetry | None:
    """The active handle, else the one being shut down (an exit flush or a SIGTERM that
    comes during a shutdown waits for it)."""
    with lock:
        return _current or _stopping


def set_current(telemetry: Telemetry) -> None:
    """``telemetry`` is the active pipeline from now on."""
    global _current
    with lock:
        _current = telemetry


def leave(telemetry: Telemetry) -> None:
    """``telemetry`` is shutting down: no longer active, but waited for at exit."""
    global _current, _stopping
    with lock:
        if _current is telemetry:
            _current = None
        _stopping = telemetry


def hosting() -> tuple[int, str] | None:
    """``(pid, OTELKIT_RELAY value)`` of the relay this process serves: a value inherited
    from a parent (a pre-fork server's worker) is the parent's relay, never one to serve."""
    return _hosting


def set_hosting(value: tuple[int, str] | None) -> None:
    """Record the relay this process serves (None: none)."""
    global _hosting
    _hosting = value
