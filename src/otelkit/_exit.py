"""Run a flush when the process ends: at interpreter exit and when a ``multiprocessing``
child leaves through ``os._exit``.

``fork`` and ``forkserver`` children of ``multiprocessing`` end with ``os._exit()`` right after
running ``multiprocessing.util``'s finalizers, and clear that registry first thing after the
fork; so the finalizer is registered again through ``register_after_fork`` in each forked
child. ``multiprocessing`` is never imported for this: a process that forks through it has
already imported it.
"""

from __future__ import annotations

import atexit
import sys
import weakref
from collections.abc import Callable
from typing import TypeVar

from otelkit._fork import after_fork_in_child

__all__ = ["call_at_exit"]

T = TypeVar("T")


def call_at_exit(obj: T, method: Callable[[T], None], *, priority: int) -> None:
    """Call ``method(obj)`` when this process (or a child forked from it) ends, while ``obj``
    is alive. Among ``multiprocessing`` finalizers a higher ``priority`` runs first; at
    interpreter exit the later registration runs first (``atexit`` order). ``method`` must
    be idempotent: both paths may call it.
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
    after_fork_in_child(obj, in_forked_child)
    register_finalizer()  # obj built inside a multiprocessing child
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:  # built in a fork hook, before multiprocessing's own reset
        mp_util.register_after_fork(obj, register_finalizer)
