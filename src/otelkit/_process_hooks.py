"""What otelkit installs in the process once it is configured: the exit flush (``atexit``,
``multiprocessing``'s finalizers and the ``os._exit`` guard), the SIGTERM flush, and the
after-fork hook that turns a fork child of a relay host into a relay child.

Installed by the first ``configure()``, never at import: importing otelkit changes nothing
in the process.
"""

from __future__ import annotations

import os
import threading

from otelkit import _active, _forksignals, _sigterm
from otelkit._exit import call_at_exit, guard_os_exit

__all__ = ["install"]

_installed = False
_install_lock = threading.Lock()


class _ExitHook:
    """The process-wide exit flush (atexit, and ``multiprocessing``'s ``os._exit`` path,
    ahead of a relay pipeline's own finalizer)."""

    def run(self) -> None:
        # A shutdown already under way (a SIGTERM's) must finish before the process ends.
        telemetry = _active.current_or_stopping()
        if telemetry is not None:
            telemetry.shutdown()


_EXIT_HOOK = _ExitHook()


def install() -> None:
    """Install the process hooks (idempotent). Called by ``configure()`` before it builds
    anything, so that the after-fork hook runs ahead of those of the SDK's new objects."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        call_at_exit(_EXIT_HOOK, _ExitHook.run, priority=101)
        _forksignals.install(lambda: _active.current_in_fork_hook() is not None)
        os.register_at_fork(after_in_child=_after_fork_in_child)
        guard_os_exit()


def install_sigterm() -> bool:
    """otelkit's SIGTERM flush, where SIGTERM has its default action (see :mod:`_sigterm`)."""
    return _sigterm.install(_active.current_or_stopping)


def _after_fork_in_child() -> None:
    _sigterm.reinstall_after_fork()
    telemetry = _active.current_in_fork_hook()
    if telemetry is not None and telemetry.relay_host is not None and telemetry.active:
        telemetry._become_relay_child()
