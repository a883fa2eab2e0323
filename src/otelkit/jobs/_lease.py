"""Lease renewal: one background thread per store renews held leases at half their length.

One timer from the injected clock (``call_later``) is armed for the earliest renewal due;
when it fires it only wakes the renewal thread, which renews every lease due (plus those
due soon, in the same statement) and re-arms the timer. With a ``FakeClock`` no lease is
renewed until the test advances the clock.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from otelkit._clock import Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._threads import start_daemon

__all__ = ["Lease", "LeaseKeeper"]

RenewFn = Callable[[str, Sequence[tuple[str, int]]], set[str]]
_RETRY_AFTER_ERROR = 0.1  # fraction of the lease to wait before retrying a failed renewal
_EARLY = 0.25  # renew leases due within this fraction of their length together


@dataclass(eq=False)
class Lease:
    """One held lease; ``lost`` becomes true when a renewal found the row no longer ours."""

    owner: str
    job_id: str
    attempt: int
    seconds: float
    due: float
    lost: bool = False


class LeaseKeeper:
    """Renews registered leases through ``renew(owner, [(job_id, attempt)]) -> held ids``."""

    def __init__(self, renew: RenewFn, clock: Clock) -> None:
        self._renew = renew
        self._clock = clock
        self._reset()
        ref = weakref.ref(self)

        def after_fork() -> None:
            keeper = ref()
            if keeper is not None:
                keeper._reset()

        os.register_at_fork(after_in_child=after_fork)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._held: dict[int, Lease] = {}
        self._timer: TimerHandle | None = None
        self._timer_due = float("inf")
        self._wake = False
        self._thread: threading.Thread | None = None
        self._closed = False

    def hold(self, owner: str, job_id: str, attempt: int, seconds: float) -> Lease:
        """Start renewing a lease just acquired (first renewal after half its length)."""
        lease = Lease(owner, job_id, attempt, seconds, self._clock.monotonic() + seconds / 2)
        with self._cond:
            self._held[id(lease)] = lease
            self._arm(lease.due)
        return lease

    def drop(self, lease: Lease) -> None:
        """Stop renewing (the attempt ended)."""
        with self._cond:
            self._held.pop(id(lease), None)

    def close(self) -> None:
        """Stop the renewal thread (held leases simply expire)."""
        with self._cond:
            self._closed = True
            self._held.clear()
            if self._timer is not None:
                self._timer.cancel()
            self._cond.notify_all()

    def _arm(self, due: float) -> None:
        """Make sure a timer fires by ``due`` (caller holds the lock)."""
        if due >= self._timer_due or self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = self._clock.call_later(due - self._clock.monotonic(), self._fire)

    def _fire(self) -> None:
        with self._cond:
            self._timer, self._timer_due = None, float("inf")
            self._wake = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = start_daemon(self._run, name="otelkit-jobs-lease")
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._wake and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                self._wake = False
                now = self._clock.monotonic()
                due = [x for x in self._held.values() if x.due <= now + _EARLY * x.seconds]
            by_owner: dict[str, list[Lease]] = {}
            for lease in due:
                by_owner.setdefault(lease.owner, []).append(lease)
            for owner, leases in by_owner.items():
                self._renew_group(owner, leases, now)
            with self._cond:
                if self._held:
                    self._arm(min(x.due for x in self._held.values()))

    def _renew_group(self, owner: str, leases: list[Lease], now: float) -> None:
        try:
            held = self._renew(owner, [(lease.job_id, lease.attempt) for lease in leases])
        except Exception as exc:  # noqa: BLE001 - database down: retry soon, lease may still hold
            report_internal_error("jobs.lease_renewal", exc)
            with self._cond:
                for lease in leases:
                    lease.due = now + lease.seconds * _RETRY_AFTER_ERROR
            return
        with self._cond:
            for lease in leases:
                if lease.job_id in held:
                    lease.due = now + lease.seconds / 2
                elif self._held.pop(id(lease), None) is not None:
                    lease.lost = True
