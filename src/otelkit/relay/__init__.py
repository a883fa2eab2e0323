"""Relay: child processes export compact batches to their parent over a Unix socket.

The host runs a :class:`RelayHost` and publishes :attr:`RelayHost.env_value` in the
``OTELKIT_RELAY`` environment variable (:data:`RELAY_ENV`); a child builds its providers
with :meth:`ChildPipeline.from_env`. See ``docs/relay.md``.

The host side and the SDK exporters are imported on first use, so a child's start-up does
not pay for the protobuf message classes the host decodes with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otelkit.relay._processors import RelayLoggingHandler
from otelkit.relay._wire import RELAY_ENV, RelayAddress
from otelkit.relay._child import ChildPipeline

if TYPE_CHECKING:
    from otelkit.relay._exporters import RelayLogExporter, RelaySpanExporter
    from otelkit.relay._host import RelayHost

__all__ = [
    "RELAY_ENV",
    "ChildPipeline",
    "RelayAddress",
    "RelayHost",
    "RelayLogExporter",
    "RelayLoggingHandler",
    "RelaySpanExporter",
]

# Handed on lazily (PEP 562): importing them costs a child start-up time it never needs.
_LAZY = {
    "RelayHost": "otelkit.relay._host",
    "RelayLogExporter": "otelkit.relay._exporters",
    "RelaySpanExporter": "otelkit.relay._exporters",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otelkit.relay' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
