"""Relay: child processes export compact batches to their parent over a Unix socket.

``otelkit.configure(relay=True)`` runs it for you. By hand, the host runs a
:class:`RelayHost` and publishes :attr:`RelayHost.env_value` in the ``OTELKIT_RELAY``
environment variable (:data:`RELAY_ENV`); a child builds its pipeline with
:meth:`ChildPipeline.from_env`. See ``docs/relay.md``.

The host side is imported on first use, so a child's start-up does not pay for the
protobuf message classes the host decodes with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otelkit.relay._child import ChildPipeline
from otelkit.relay._wire import RELAY_ENV, RelayAddress

if TYPE_CHECKING:
    from otelkit.relay._host import RelayHost

__all__ = ["RELAY_ENV", "ChildPipeline", "RelayAddress", "RelayHost"]


def __getattr__(name: str) -> Any:
    # Handed on lazily (PEP 562): importing the host costs a child start-up time it never needs.
    if name != "RelayHost":
        raise AttributeError(f"module 'otelkit.relay' has no attribute {name!r}")
    from otelkit.relay._host import RelayHost

    globals()[name] = RelayHost
    return RelayHost
