"""Who may see the dashboard and act through it: loopback or a bearer token, CSRF tokens.

Without a token only loopback clients addressing a loopback host name are served (the Host
check stops a web page that rebinds its DNS name to 127.0.0.1 from reading the dashboard).
With a token every request carries it: ``Authorization: Bearer <token>``, or the cookie the
sign-in form sets. Every action is a ``POST`` whose form repeats the value of the CSRF
cookie (double submit; the cookie is ``SameSite=Strict``), and a cross-site ``Origin`` is
refused before that.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from urllib.parse import urlsplit

from otelkit.errors import InvalidOptionError

__all__ = [
    "AUTH_COOKIE",
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "TOKEN_ENV",
    "check_bind",
    "is_loopback",
    "new_csrf_token",
    "resolve_token",
    "same_secret",
]

TOKEN_ENV = "OTELKIT_JOBS_WEB_TOKEN"
AUTH_COOKIE = "otelkit_jobs_auth"
CSRF_COOKIE = "otelkit_jobs_csrf"
CSRF_FIELD = "csrf"
_MIN_TOKEN = 16
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def resolve_token(token: str | None) -> str | None:
    """The token: the argument, else ``$OTELKIT_JOBS_WEB_TOKEN``, else None; too short a
    token raises (a guessable token is worse than none: it opens the network)."""
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if token is None:
        return None
    if not isinstance(token, str) or len(token) < _MIN_TOKEN:
        raise InvalidOptionError(
            f"jobs web: the token ({TOKEN_ENV}) must be at least {_MIN_TOKEN} characters; "
            'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return token


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or a name, maybe ``[v6]`` or with a port) is loopback."""
    if not host:
        return False
    name = host.strip()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:  # name:port (an IPv6 address has several colons)
        name = name.split(":", 1)[0]
    name = name.lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a token."""
    if token is None and not is_loopback(host):
        raise InvalidOptionError(
            f"jobs web: refusing to listen on {host!r} without a token: anyone who can reach "
            f"it could retry and cancel jobs. Set {TOKEN_ENV} to a long random secret "
            "(clients then send 'Authorization: Bearer <token>' or sign in with it), or "
            "listen on 127.0.0.1 and reach it through an SSH tunnel"
        )


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented secret with the expected one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def new_csrf_token() -> str:
    """A fresh random CSRF token."""
    return secrets.token_urlsafe(32)


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a request's ``Origin`` header (when sent) names the host it was sent to."""
    if origin is None:
        return True
    if origin == "null" or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()
