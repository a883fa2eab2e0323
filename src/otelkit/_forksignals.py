"""Forking with the asynchronous signals blocked, so that none reaches a new child before it
can handle it.

A signal that reaches a new child before CPython's own after-fork reset is cleared by it
and lost (a child that never dies of SIGTERM). So a process that configured otelkit forks
with its signals blocked: they stay pending until the child's fork hooks are done, and the
SDK's metric reader thread, which a hook of the SDK's restarts, inherits the block (see
:mod:`otelkit._threads`). The block ends in a hook registered after the SDK's (each
``configure()`` registers a new one; only the latest acts).

A server that installs a child's own handlers only later (gunicorn's workers, in
``init_signals``) asks for the block to be *held* past the hooks
(:func:`hold_signals_in_next_child`) and ends it itself (:func:`release_held_signals`):
otherwise a signal reaching the child meanwhile runs the parent's handler there.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from otelkit._threads import block_signals, restore_signals

__all__ = [
    "end_block_after_latest_hooks",
    "hold_signals",
    "hold_signals_in_next_child",
    "install",
    "release_held_signals",
]

_fork_mask: Any = None  # the mask to restore, while a fork is under way
_generation = 0
_hold_in_child = False
_held_mask: Any = None


def install(configured: Callable[[], bool]) -> None:
    """Block signals across every fork made while ``configured()`` is true."""

    def before() -> None:
        global _fork_mask
        _fork_mask = block_signals() if configured() else None

    os.register_at_fork(before=before, after_in_parent=_after_in_parent)


def _after_in_parent() -> None:
    global _fork_mask, _hold_in_child
    restore_signals(_fork_mask)
    _fork_mask = None
    _hold_in_child = False


def end_block_after_latest_hooks() -> None:
    """Register, after the fork hooks just registered (a new pipeline's readers), the hook
    that ends the block in a forked child."""
    global _generation
    _generation += 1
    os.register_at_fork(after_in_child=functools.partial(_end_block_in_child, _generation))


def _end_block_in_child(generation: int) -> None:
    global _fork_mask, _held_mask, _hold_in_child
    if generation != _generation:
        return
    if _fork_mask is not None:
        if _hold_in_child:
            _held_mask = _fork_mask
        else:
            restore_signals(_fork_mask)
        _fork_mask = None
    _hold_in_child = False


def hold_signals_in_next_child() -> None:
    """Keep the next forked child's asynchronous signals blocked after the fork hooks,
    until it calls :func:`release_held_signals`."""
    global _hold_in_child
    _hold_in_child = True


def hold_signals() -> None:
    """Block this thread's asynchronous signals until :func:`release_held_signals` (kept as
    they are when a fork already holds them)."""
    global _held_mask
    if _held_mask is None:
        _held_mask = block_signals()


def release_held_signals() -> None:
    """End the block :func:`hold_signals_in_next_child` or :func:`hold_signals` began;
    signals that arrived meanwhile are delivered now."""
    global _held_mask
    mask, _held_mask = _held_mask, None
    restore_signals(mask)
