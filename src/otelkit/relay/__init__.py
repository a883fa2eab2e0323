"""Relay: child processes export OTLP batches to their parent over a Unix socket.

The host runs a :class:`RelayHost` and publishes :attr:`RelayHost.env_value` in the
``OTELKIT_RELAY`` environment variable (:data:`RELAY_ENV`); a child builds its providers
with :meth:`ChildPipeline.from_env`. See ``docs/relay.md``.
"""

from otelkit.relay._processors import RelayLoggingHandler
from otelkit.relay._wire import RelayAddress
from otelkit.relay.child import ChildPipeline
from otelkit.relay.exporters import RELAY_ENV, RelayLogExporter, RelaySpanExporter
from otelkit.relay.host import RelayHost

__all__ = [
    "RELAY_ENV",
    "ChildPipeline",
    "RelayAddress",
    "RelayHost",
    "RelayLogExporter",
    "RelayLoggingHandler",
    "RelaySpanExporter",
]
