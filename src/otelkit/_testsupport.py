"""What ``otelkit.testing``'s Collector needs and users do not: a free loopback port and
where the ``rotel`` binary is (also used by otelkit's own tests and benchmarks)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

__all__ = ["free_port", "rotel_binary"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rotel_binary() -> str | None:
    """Path of the ``rotel`` agent binary shipped by the ``rotel`` package, if installed."""
    try:
        import rotel  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    path = Path(rotel.__file__).with_name("rotel-agent")
    return str(path) if path.exists() else shutil.which("rotel")
