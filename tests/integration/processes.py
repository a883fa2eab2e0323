"""A real process under test with its output in a file, shared by the server and task-queue
tests: it runs in its own process group, so closing it kills every child it forked."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from otelkit.testing import wait_until


class LoggedProcess:
    """``argv`` started in ``cwd`` with ``env``; stdout and stderr go to ``log``."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: close() can kill every child
        )

    def output(self) -> str:
        """Everything the process has written so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self) -> str:
        """The end of :meth:`output`, for a failure message."""
        return self.output()[-6000:]

    def wait_for_output(self, text: str, timeout: float = 60.0) -> None:
        """Wait (bounded) until ``text`` is in the output; fail if the process exits first."""
        try:
            wait_until(
                lambda: text in self.output() or self.process.poll() is not None, timeout=timeout
            )
        except TimeoutError:
            raise AssertionError(f"no {text!r} in the output:\n{self.tail()}") from None
        assert text in self.output(), self.tail()

    def terminate(self, timeout: float = 60.0) -> float:
        """SIGTERM; the seconds until the process exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"SIGTERM ignored for {timeout} s:\n{self.tail()}") from None
        return time.monotonic() - started

    def close(self) -> None:
        """Kill the process group (workers orphaned by an exited master too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)
        self._log.close()
