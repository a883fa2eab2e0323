"""otelkit's background threads never take the application's signals.

Python runs signal handlers on the main thread only. When the kernel delivers a
process-directed signal (``kill``, ``Pool.terminate()``) to another thread while the main
thread waits in C (a ``multiprocessing`` queue's semaphore, say), the handler does not run
until that wait ends, which may be never: the process ignores SIGTERM. So every thread
otelkit starts, and the SDK threads it causes, are created with the asynchronous signals
blocked (a new thread inherits its creator's mask), leaving the main thread to take them.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["block_signals", "restore_signals", "signals_blocked", "start_daemon"]

# Faults must reach the thread that caused them; SIGKILL and SIGSTOP cannot be blocked.
_SYNCHRONOUS = {"SIGKILL", "SIGSTOP", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGTRAP"}
_ASYNC = {s for s in signal.valid_signals() if getattr(s, "name", "") not in _SYNCHRONOUS}


def block_signals() -> Any:
    """Block asynchronous signals on this thread; the previous mask (``None`` where the
    platform has no ``pthread_sigmask``), for :func:`restore_signals`."""
    try:
        return signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC)
    except (AttributeError, OSError, ValueError):
        return None


def restore_signals(previous: Any) -> None:
    """Put back the mask :func:`block_signals` returned."""
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block asynchronous signals on this thread for the duration (threads started meanwhile
    keep them blocked); a signal arriving meanwhile is delivered when the block ends."""
    previous = block_signals()
    try:
        yield
    finally:
        restore_signals(previous)


def start_daemon(
    target: Callable[..., Any], *, name: str, args: tuple[Any, ...] = ()
) -> threading.Thread:
    """Start a daemon thread that never receives an asynchronous signal."""
    thread = threading.Thread(target=target, name=name, args=args, daemon=True)
    with signals_blocked():
        thread.start()
    return thread
