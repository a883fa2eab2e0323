"""Run a flush when the process ends: at interpreter exit, when a ``multiprocessing`` child
leaves through ``os._exit``, and when any code of the process calls ``os._exit``.

``fork`` and ``forkserver`` children of ``multiprocessing`` end with ``os._exit()`` right after
running ``multiprocessing.util``'s finalizers, and clear that registry first thing after the
fork; so the finalizer is registered again through ``register_after_fork`` in each forked
child. ``multiprocessing`` is never imported for this: a process that forks through it has
already imported it.

Other code leaves through ``os._exit`` with no finalizer at all: RQ's work-horses after each
job, billiard's pool processes (Celery's prefork workers) when recycled or terminated, any
``fork`` child of a server. :func:`guard_os_exit` (called by ``configure()``) wraps
``os._exit`` so that the same exit hooks run first, on a thread of their own and bounded in
time: the thread calling ``os._exit`` may be inside a signal handler, holding a lock the
flush needs, and the process must end anyway.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import NoReturn, TypeVar

from otelkit._fork import after_fork_in_child

__all__ = ["call_at_exit", "guard_os_exit"]

T = TypeVar("T")

# Seconds ``os._exit`` waits for the exit hooks: past the longest bounded shutdown they run
# (a relay child's exit_timeout plus its final drop report), so only a deadlock hits it.
_OS_EXIT_BOUND = 6.0

_hooks: list[tuple[int, int, Callable[[], None]]] = []  # (-priority, order, hook)
_lock = threading.Lock()
_os_exit: Callable[[int], NoReturn] = os._exit  # what the guard calls in the end
_exiting = False


def call_at_exit(obj: T, method: Callable[[T], None], *, priority: int) -> None:
    """Call ``method(obj)`` when this process (or a child forked from it) ends, while ``obj``
    is alive. Among ``multiprocessing`` finalizers and ``os._exit`` hooks a higher
    ``priority`` runs first; at interpreter exit the later registration runs first
    (``atexit`` order). ``method`` must be idempotent: several paths may call it.
    """
    ref = weakref.ref(obj)

    def at_exit() -> None:
        target = ref()
        if target is not None:
            method(target)

    def register_finalizer(_: object = None) -> None:
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:
            mp_util.Finalize(None, at_exit, exitpriority=priority)

    def in_forked_child(target: T) -> None:
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:  # runs after multiprocessing's reset
            mp_util.register_after_fork(target, register_finalizer)

    atexit.register(at_exit)
    with _lock:
        _hooks.append((-priority, len(_hooks), at_exit))
    after_fork_in_child(obj, in_forked_child)
    register_finalizer()  # obj built inside a multiprocessing child
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:  # built in a fork hook, before multiprocessing's own reset
        mp_util.register_after_fork(obj, register_finalizer)


def guard_os_exit() -> None:
    """Make ``os._exit`` run the exit hooks first (idempotent; another wrapper installed
    before stays in the chain)."""
    global _os_exit
    if os._exit is not _guarded_exit:
        _os_exit = os._exit
        os._exit = _guarded_exit


def _guarded_exit(status: int) -> NoReturn:
    global _exiting
    try:
        if not _exiting:  # a hook that itself calls os._exit ends the process at once
            _exiting = True
            with _lock:
                hooks = [hook for _, _, hook in sorted(_hooks, key=lambda h: h[:2])]
            if hooks:
                runner = threading.Thread(
                    target=_run_all, args=(hooks,), name="otelkit-os-exit", daemon=True
                )
                runner.start()
                runner.join(_OS_EXIT_BOUND)
    finally:
        _os_exit(status)


def _run_all(hooks: list[Callable[[], None]]) -> None:
    for hook in hooks:
        with contextlib.suppress(Exception):  # the process is ending: the next hook still runs
            hook()
