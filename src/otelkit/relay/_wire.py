"""The relay's wire format: address, handshake and length-prefixed frames.

Everything a child and its host exchange over the Unix socket is defined here:

``OTELKIT_RELAY``
    ``<version>:<token hex>:<socket path>``, e.g. ``5:9f0c...e1:/tmp/otelkit-relay-x/relay.sock``.
    The path is everything after the second colon (it may itself contain colons).

Handshake (child -> host, once per connection)
    ``b"OTKR"``, one version byte, then the 16 token bytes (21 bytes in all).
    The host answers ``b"OTKR"``, its version byte and a status byte (``0`` accepted) and
    then only reads; to another version it answers status ``1`` and closes; on a wrong magic
    or token it closes the connection without an answer.

Frame (child -> host, any number)
    a 4-byte big-endian payload length, a 1-byte frame type, then the payload:
    ``FRAME_LOGS`` an OTLP ``ExportLogsServiceRequest``, ``FRAME_SPANS`` an OTLP
    ``ExportTraceServiceRequest``, ``FRAME_METRICS`` an OTLP ``ExportMetricsServiceRequest``
    (all protobuf, under the child's resource), ``FRAME_DROPS`` three big-endian unsigned
    64-bit counts (log records, spans, metric data points) dropped by the child since its
    previous report.

A peer of another version is refused at the handshake (the host answers with status
``1``), never misread.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

__all__ = [
    "FRAME_DROPS",
    "FRAME_LOGS",
    "FRAME_METRICS",
    "FRAME_SPANS",
    "FRAME_TYPES",
    "HANDSHAKE_SIZE",
    "MAGIC",
    "RELAY_ENV",
    "REPLY_SIZE",
    "STATUS_ACCEPTED",
    "STATUS_VERSION",
    "TOKEN_SIZE",
    "VERSION",
    "FrameDecoder",
    "FrameError",
    "RelayAddress",
    "check_handshake",
    "decode_drops",
    "encode_drops",
    "encode_frame",
    "encode_handshake",
    "encode_refusal",
    "encode_reply",
]

RELAY_ENV = "OTELKIT_RELAY"
"""The environment variable through which a host tells its children where its relay is."""

MAGIC = b"OTKR"
VERSION = 5
TOKEN_SIZE = 16
HANDSHAKE_SIZE = len(MAGIC) + 1 + TOKEN_SIZE
REPLY_SIZE = len(MAGIC) + 2
STATUS_ACCEPTED = 0
STATUS_VERSION = 1  # the host speaks another version: upgrade child and host together

FRAME_LOGS = 1
FRAME_SPANS = 2
FRAME_DROPS = 3
FRAME_METRICS = 4
FRAME_TYPES = frozenset({FRAME_LOGS, FRAME_SPANS, FRAME_DROPS, FRAME_METRICS})

_HEADER = struct.Struct("!IB")
_DROPS = struct.Struct("!QQQ")
HEADER_SIZE = _HEADER.size


class FrameError(ValueError):
    """A peer sent bytes that break the wire format; its connection must be closed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        """Low-cardinality cause: ``oversized``, ``frame_type``, ``handshake``, ``token``..."""


@dataclass(frozen=True)
class RelayAddress:
    """Where a relay listens and the secret a child presents (the ``OTELKIT_RELAY`` value)."""

    path: str
    token: bytes
    version: int = VERSION

    @classmethod
    def generate(cls, path: str) -> RelayAddress:
        """A new address for ``path`` with a fresh random token."""
        return cls(path=path, token=os.urandom(TOKEN_SIZE))

    @classmethod
    def parse(cls, value: str) -> RelayAddress:
        """Parse an ``OTELKIT_RELAY`` value; ``ValueError`` says what is wrong with it."""
        if not isinstance(value, str):
            raise TypeError(f"OTELKIT_RELAY value must be a str, got {type(value).__name__}")
        parts = value.split(":", 2)
        if len(parts) != 3 or not parts[2]:
            raise ValueError(
                f"OTELKIT_RELAY must look like '<version>:<token hex>:<socket path>', got {value!r}"
            )
        version_text, token_hex, path = parts
        if version_text != str(VERSION):
            raise ValueError(
                f"OTELKIT_RELAY version {version_text!r} is not supported by this otelkit "
                f"(it speaks relay version {VERSION}): run the same otelkit release in the "
                "parent and its children"
            )
        try:
            token = bytes.fromhex(token_hex)
        except ValueError:
            raise ValueError("OTELKIT_RELAY token must be hexadecimal") from None
        if len(token) != TOKEN_SIZE:
            raise ValueError(
                f"OTELKIT_RELAY token must be {TOKEN_SIZE} bytes ({TOKEN_SIZE * 2} hex)"
            )
        return cls(path=path, token=token)

    def env_value(self) -> str:
        """The ``OTELKIT_RELAY`` value that :meth:`parse` reads back."""
        return f"{self.version}:{self.token.hex()}:{self.path}"

    def __repr__(self) -> str:  # never print the secret
        return f"RelayAddress(path={self.path!r}, token=<hidden>, version={self.version})"


def encode_handshake(token: bytes) -> bytes:
    """The bytes a child sends first on a new connection."""
    return MAGIC + bytes([VERSION]) + token


def check_handshake(data: bytes, token: bytes) -> None:
    """Validate a child's handshake against ``token``; raise :class:`FrameError` if wrong."""
    if len(data) != HANDSHAKE_SIZE or data[: len(MAGIC)] != MAGIC:
        raise FrameError("handshake", "peer did not send the relay handshake")
    if data[len(MAGIC)] != VERSION:
        raise FrameError("version", f"peer speaks relay version {data[len(MAGIC)]}")
    import hmac  # host side only: a child's start-up does not pay for it

    if not hmac.compare_digest(data[len(MAGIC) + 1 :], token):
        raise FrameError("token", "peer presented a wrong token")


def encode_reply() -> bytes:
    """The host's answer to an accepted handshake."""
    return MAGIC + bytes([VERSION, STATUS_ACCEPTED])


def encode_refusal() -> bytes:
    """The host's answer to a handshake of another version (then it closes)."""
    return MAGIC + bytes([VERSION, STATUS_VERSION])


def encode_frame(frame_type: int, payload: bytes) -> bytes:
    """One frame: length, type, payload."""
    return _HEADER.pack(len(payload), frame_type) + payload


def encode_drops(logs: int, spans: int, metric_points: int = 0) -> bytes:
    """A ``FRAME_DROPS`` frame reporting counts dropped since the previous report."""
    return encode_frame(FRAME_DROPS, _DROPS.pack(logs, spans, metric_points))


def decode_drops(payload: bytes) -> tuple[int, int, int]:
    """``(logs, spans, metric points)`` of a ``FRAME_DROPS`` payload."""
    if len(payload) != _DROPS.size:
        raise FrameError("malformed", f"drops payload must be {_DROPS.size} bytes")
    logs, spans, points = _DROPS.unpack(payload)
    return int(logs), int(spans), int(points)


class FrameDecoder:
    """Incremental frame parser: feed it whatever ``recv`` returned, get whole frames back.

    Memory stays bounded: a header announcing more than ``max_frame_bytes`` raises
    :class:`FrameError` before any of that payload is buffered.
    """

    def __init__(self, *, max_frame_bytes: int) -> None:
        self._max = max_frame_bytes
        self._buf = bytearray()

    @property
    def pending_bytes(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Append ``data``; return every complete ``(frame_type, payload)``."""
        self._buf += data
        frames: list[tuple[int, bytes]] = []
        buf = self._buf
        offset = 0
        while len(buf) - offset >= HEADER_SIZE:
            length, frame_type = _HEADER.unpack_from(buf, offset)
            if frame_type not in FRAME_TYPES:
                raise FrameError("frame_type", f"unknown frame type {frame_type}")
            if length > self._max:
                raise FrameError(
                    "oversized", f"frame of {length} bytes exceeds the {self._max} byte limit"
                )
            end = offset + HEADER_SIZE + length
            if len(buf) < end:
                break
            frames.append((frame_type, bytes(buf[offset + HEADER_SIZE : end])))
            offset = end
        if offset:
            del buf[:offset]
        return frames
