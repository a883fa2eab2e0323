"""One helper: run a method of an object in every forked child, without keeping it alive."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["after_fork_in_child"]

T = TypeVar("T")


def after_fork_in_child(obj: T, method: Callable[[T], None]) -> None:
    """Call ``method(obj)`` in each child forked from now on, while ``obj`` is alive."""
    ref = weakref.ref(obj)

    def hook() -> None:
        target = ref()
        if target is not None:
            method(target)

    os.register_at_fork(after_in_child=hook)
