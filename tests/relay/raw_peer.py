"""A peer of a relay host written by hand: a socket that speaks the wire directly."""

from __future__ import annotations

import socket

from otelkit.relay import RelayHost
from otelkit.relay._wire import REPLY_SIZE, encode_handshake, encode_reply


def connect(host: RelayHost, token: bytes | None = None) -> socket.socket:
    """A connection that has sent the handshake (with ``token``, by default the host's)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(host.address.path)
    sock.sendall(encode_handshake(host.address.token if token is None else token))
    return sock


def authed(host: RelayHost) -> socket.socket:
    """A connection the host has accepted."""
    sock = connect(host)
    assert sock.recv(REPLY_SIZE) == encode_reply()
    return sock


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the host closed the connection (waits up to the socket's timeout)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
