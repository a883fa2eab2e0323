"""What the relay benchmarks share: the record shape, and a relay host made by
``otelkit.configure(relay=True)`` in a process of its own, exporting OTLP/HTTP (gzip) to
the benchmarks' receiver (``_otlp_receiver.py``).

    python benchmarks/_relay_common.py --host ENDPOINT   (what :class:`HostProcess` runs)

The host process prints its ``OTELKIT_RELAY`` value, serves until its standard input
closes, shuts down (reading what children wrote, flushing the export) and prints the drops
its ledger counted for logs, as JSON.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

HOST_OPTIONS = {"coalesce_window": False, "shutdown_timeout": 120.0}
"""Every benchmark record is distinct but shares its template, so the coalescer is off:
what is measured is export, and emitted = exported + counted drops holds record for record."""


def log_many(logger: logging.Logger, start: int, n: int, source: str) -> None:
    """The record shape every relay benchmark uses: a formatted message and two extras."""
    for i in range(start, start + n):
        logger.info("record %d from %s", i, source, extra={"job.id": i, "tier": "gold"})


def info_logger(name: str) -> logging.Logger:
    """A logger whose INFO records reach the root logger's handlers."""
    logging.getLogger().setLevel(logging.INFO)
    return logging.getLogger(name)


def log_drops(telemetry: object) -> int:
    """What an otelkit pipeline counted as dropped, for logs, every reason."""
    totals = telemetry.dropped()  # type: ignore[attr-defined]
    return sum(n for (signal, _), n in totals.items() if signal == "logs")


class HostProcess:
    """A relay host (``configure(relay=True)``) in another process; ``env_value`` is its
    ``OTELKIT_RELAY``, :meth:`close` shuts it down and returns the log drops it counted."""

    def __init__(self, endpoint: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--host", endpoint],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.env_value = self.process.stdout.readline().strip()

    def close(self) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        dropped = int(json.loads(self.process.stdout.readline())["dropped"])
        self.process.wait(120)
        return dropped


def _serve(endpoint: str) -> None:
    import os

    import otelkit
    from otelkit.relay import RELAY_ENV

    tel = otelkit.configure(
        service_name="bench-host", endpoint=endpoint, relay=True, **HOST_OPTIONS
    )
    print(os.environ[RELAY_ENV], flush=True)
    sys.stdin.read()
    tel.shutdown()
    print(json.dumps({"dropped": log_drops(tel)}), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--host"]:
    sys.path.insert(0, str(Path(__file__).parent))
    _serve(sys.argv[2])
