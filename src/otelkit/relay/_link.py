"""The child's end of the socket: connect, authenticate, send whole frames, back off.

Only the sender thread (or an exporter's export call) uses a link; nothing here runs on a
hot path. A frame is either sent whole or kept for a retry on the next connection, so a
half-written frame never corrupts the stream, and a frame the host cannot have received
(the send failed) is sent again after a reconnect.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable

from otelkit._errors import report_internal_error
from otelkit.relay._wire import (
    MAGIC,
    REPLY_SIZE,
    STATUS_VERSION,
    VERSION,
    RelayAddress,
    encode_handshake,
    encode_reply,
)

__all__ = ["Link"]

_IO_TIMEOUT = 0.25


class Link:
    """One child's connection to the relay host, with reconnect backoff."""

    def __init__(
        self,
        address: RelayAddress,
        *,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        connect_timeout: float = 1.0,
    ) -> None:
        self.address = address
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._backoff = backoff_initial
        self._next_attempt = 0.0
        self._pid = os.getpid()
        self.connects = 0
        """How many times a connection was established (for tests and diagnostics)."""

    @property
    def connected(self) -> bool:
        """Whether a handshaken connection is open."""
        return self._sock is not None

    def ensure_connected(self) -> bool:
        """Connect and handshake unless connected or still backing off; ``True`` if up."""
        if self._sock is not None:
            return True
        now = time.monotonic()
        if now < self._next_attempt:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._connect_timeout)
            sock.connect(self.address.path)
            sock.sendall(encode_handshake(self.address.token))
            reply = _recv_exactly(sock, REPLY_SIZE)
            if reply != encode_reply():
                _refused(reply)
            sock.settimeout(_IO_TIMEOUT)
        except OSError:
            sock.close()
            self._next_attempt = now + self._backoff
            self._backoff = min(self._backoff * 2, self._backoff_max)
            return False
        self._sock = sock
        self._backoff = self._backoff_initial
        self.connects += 1
        return True

    def send(self, frame: bytes, *, abort: Callable[[], bool] = lambda: False) -> bool:
        """Send ``frame`` whole, waiting out a slow host; ``False`` if the connection failed
        or ``abort()`` turned true while stalled (the connection is then closed, since a
        partial frame cannot stay on the stream). A ``False`` frame must be sent again later.
        """
        sock = self._sock
        if sock is None:
            return False
        view = memoryview(frame)
        sent = 0
        try:
            while sent < len(view):
                try:
                    sent += sock.send(view[sent:])
                except (TimeoutError, BlockingIOError):
                    if abort():
                        self.close()
                        return False
        except OSError:
            self.close()
            return False
        return True

    def close(self) -> None:
        """Close the connection (the next ``ensure_connected`` reconnects at once)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        self._next_attempt = 0.0

    def reset_after_fork(self) -> None:
        """Forget the parent's connection without touching it (the parent still uses it)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()  # close(2) only: no shutdown(2), the parent's link stays up
        self._backoff = self._backoff_initial
        self._next_attempt = 0.0
        self._pid = os.getpid()


_version_told = False


def _refused(reply: bytes) -> None:
    """Raise for a refused handshake; a host of another version is reported (once per
    process, through the internal-error log), since no reconnect will ever succeed."""
    if reply[: len(MAGIC)] == MAGIC and reply[-1] == STATUS_VERSION:
        error = ConnectionError(
            f"relay host speaks relay version {reply[len(MAGIC)]}, this child {VERSION}: "
            "run the same otelkit release in the parent and its children"
        )
        global _version_told
        if not _version_told:  # the link to the host is what failed: say it on stderr
            _version_told = True
            with contextlib.suppress(Exception):
                sys.stderr.write(f"otelkit: {error}\n")
        report_internal_error("relay.version", error)
        raise error
    raise ConnectionError("relay host refused the handshake")


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("relay host closed the connection during the handshake")
        data += chunk
    return data
