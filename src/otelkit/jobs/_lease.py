"""Lease renewal: one background thread per store renews every held lease at half its length.

Timers come from the injected clock (``call_later``); a timer only marks leases as due
and wakes the renewal thread, which does the database work. With a ``FakeClock`` no
lease is renewed until the test advances the clock.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from otelkit._clock import Clock, TimerHandle
from otelkit._errors import report_internal_error

__all__ = ["Lease", "LeaseKeeper"]

RenewFn = Callable[[str, Sequence[tuple[str, int]]], set[str]]
_RETRY_AFTER_ERROR = 0.1  # fraction of the lease to wait before retrying a failed renewal


@dataclass(eq=False)
class Lease:
    """One held lease; ``lost`` turns true when a renewal found the row taken."""

    owner: str
    job_id: str
    attempt: int
    seconds: float
    lost: threading.Event = field(default_factory=threading.Event)
    timer: TimerHandle | None = None


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
        self._held: dict[tuple[str, str, int], Lease] = {}
        self._due: list[Lease] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def hold(self, owner: str, job_id: str, attempt: int, seconds: float) -> Lease:
        """Start renewing a lease just acquired (first renewal after half its length)."""
        lease = Lease(owner, job_id, attempt, seconds)
        with self._cond:
            self._held[(owner, job_id, attempt)] = lease
            self._schedule(lease, seconds / 2)
        return lease

    def drop(self, lease: Lease) -> None:
        """Stop renewing (the attempt ended)."""
        with self._cond:
            self._held.pop((lease.owner, lease.job_id, lease.attempt), None)
            if lease.timer is not None:
                lease.timer.cancel()

    def close(self) -> None:
        """Stop the renewal thread (held leases simply expire)."""
        with self._cond:
            self._closed = True
            for lease in self._held.values():
                if lease.timer is not None:
                    lease.timer.cancel()
            self._held.clear()
            self._cond.notify_all()

    def _schedule(self, lease: Lease, delay: float) -> None:
        lease.timer = self._clock.call_later(delay, lambda: self._mark_due(lease))

    def _mark_due(self, lease: Lease) -> None:
        with self._cond:
            if (lease.owner, lease.job_id, lease.attempt) not in self._held:
                return
            self._due.append(lease)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="otelkit-jobs-lease", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                due, self._due = self._due, []
            by_owner: dict[str, list[Lease]] = {}
            for lease in due:
                by_owner.setdefault(lease.owner, []).append(lease)
            for owner, leases in by_owner.items():
                self._renew_group(owner, leases)

    def _renew_group(self, owner: str, leases: list[Lease]) -> None:
        try:
            held = self._renew(owner, [(lease.job_id, lease.attempt) for lease in leases])
        except Exception as exc:  # noqa: BLE001 - database down: retry soon, lease may still hold
            report_internal_error("jobs.lease_renewal", exc)
            with self._cond:
                for lease in leases:
                    if (owner, lease.job_id, lease.attempt) in self._held:
                        self._schedule(lease, lease.seconds * _RETRY_AFTER_ERROR)
            return
        with self._cond:
            for lease in leases:
                if (owner, lease.job_id, lease.attempt) not in self._held:
                    continue
                if lease.job_id in held:
                    self._schedule(lease, lease.seconds / 2)
                else:
                    lease.lost.set()
                    self._held.pop((owner, lease.job_id, lease.attempt), None)
