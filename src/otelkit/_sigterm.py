"""SIGTERM: flush on a thread of its own, then end as SIGTERM's default action would.

The handler returns at once: the thread it interrupted may hold a lock (a buffer's, the
SDK's) that the flush needs, so that thread must run on. When the flush is done, the flush
thread sends SIGTERM again, and the handler, seeing it done, restores the default and
re-raises; a main thread stuck in C never runs the handler, so the flush thread ends the
process itself a second later.

Python runs signal handlers on the main thread, between bytecodes or when a system call
is interrupted. A signal arriving just before a C function starts a long wait (the
semaphore of a ``multiprocessing`` queue, where an idle pool worker spends its life) is
noted and then never acted on. So the handler also has a watcher: the signal's number,
written by CPython's C handler to a wakeup pipe, reaches a thread that blocks nothing;
if the Python handler has not run shortly after, the watcher interrupts the main thread
again, which makes its wait return and the pending handler run.

The watcher acts only while otelkit's handler is SIGTERM's handler. An application that
installs its own handler after ``configure()`` owns SIGTERM from then on: its handler runs
once per signal, as without otelkit, and the flush happens through its exit path (atexit,
or the ``os._exit`` guard of :mod:`otelkit._exit`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from otelkit._threads import start_daemon

__all__ = ["install", "installed", "reinstall_after_fork", "uninstall"]

_KICK_INTERVAL = 0.1  # seconds the watcher waits for the handler before interrupting again
_KICKS = 30
_EXIT_GRACE = 1.0  # seconds the flush thread waits for the handler's re-raise


class _Target(Protocol):
    def shutdown(self) -> bool: ...  # pragma: no cover - a protocol

    @property
    def stopped(self) -> bool: ...  # pragma: no cover - a protocol


_target: Callable[[], _Target | None] = lambda: None  # noqa: E731 - set by install()
_installed = False
_terminating = threading.Event()  # the flush is done: the next handler call re-raises
_handled = threading.Event()  # the handler ran for the SIGTERM being dealt with
_pipe: tuple[int, int] | None = None


def installed() -> bool:
    """Whether otelkit's SIGTERM handler is in place."""
    return _installed and signal.getsignal(signal.SIGTERM) is _handler


def install(target: Callable[[], _Target | None]) -> bool:
    """On the main thread, when SIGTERM has its default action: handle it (``target()``
    is what to shut down). ``False`` when the application handles SIGTERM itself."""
    global _installed, _target
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, _handler)
    except (ValueError, OSError):
        return False
    _target, _installed = target, True
    _start_watcher()
    return True


def uninstall() -> None:
    """Put SIGTERM's default action back (main thread only; elsewhere the handler stays and
    finds nothing to do)."""
    global _installed
    if threading.current_thread() is not threading.main_thread() or not installed():
        return
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _installed = False
        _stop_watcher()


def reinstall_after_fork() -> None:
    """In a forked child (its only thread): a watcher of its own. The parent's wakeup pipe,
    which the C handler would still write to, is the parent's."""
    global _pipe
    _terminating.clear()
    _handled.clear()
    inherited, _pipe = _pipe, None
    if inherited is None:
        return
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    for fd in inherited:
        with contextlib.suppress(OSError):
            os.close(fd)
    if installed():
        _start_watcher()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _terminating.is_set():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    if _handled.is_set():
        return  # a watcher's nudge, or a second SIGTERM: the flush is under way
    _handled.set()
    target = _target()
    if target is None or target.stopped:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    start_daemon(_shutdown_then_terminate, args=(target,), name="otelkit-sigterm")


def _shutdown_then_terminate(target: _Target) -> None:
    try:
        target.shutdown()
    finally:
        if installed():  # else the application took SIGTERM over meanwhile: its call now
            _terminating.set()
            os.kill(os.getpid(), signal.SIGTERM)  # the handler, on the main thread, re-raises
            threading.Event().wait(_EXIT_GRACE)
            os._exit(128 + signal.SIGTERM)


def _start_watcher() -> None:
    global _pipe
    if _pipe is not None:
        return
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except (ValueError, OSError):
        previous = -2
    if previous != -1:  # someone else's wakeup fd (an event loop's): leave it theirs
        if previous >= 0:
            signal.set_wakeup_fd(previous)
        os.close(read)
        os.close(write)
        return
    _pipe = (read, write)
    start_daemon(_watch, args=(read,), name="otelkit-sigterm-watch")


def _stop_watcher() -> None:
    global _pipe
    pipe, _pipe = _pipe, None
    if pipe is None:
        return
    with contextlib.suppress(ValueError, OSError):
        previous = signal.set_wakeup_fd(-1)
        if previous not in (-1, pipe[1]):  # an event loop's since: give it back
            signal.set_wakeup_fd(previous)
    with contextlib.suppress(OSError):
        os.close(pipe[1])  # the watcher reads the end of the pipe and closes its side


def _watch(read: int) -> None:
    main = threading.main_thread().ident
    while True:
        try:
            data = os.read(read, 64)
        except OSError:
            data = b""
        if not data:
            with contextlib.suppress(OSError):
                os.close(read)
            return
        if signal.SIGTERM not in data or main is None or not installed():
            continue  # not otelkit's signal to deliver: the application's handler has it
        for _ in range(_KICKS):
            if _handled.wait(_KICK_INTERVAL) or _pipe is None or not installed():
                break
            with contextlib.suppress(OSError, ValueError):
                signal.pthread_kill(main, signal.SIGTERM)
