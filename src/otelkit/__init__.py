"""otelkit: OpenTelemetry made practical for services that do background work.

``otelkit.configure()`` installs traces, metrics and logs in one call and returns a
:class:`Telemetry` handle. The capabilities live in subpackages: ``otelkit.coalesce``,
``otelkit.relay``, ``otelkit.jobs``, ``otelkit.preload``; test helpers in ``otelkit.testing``.
"""

from otelkit._telemetry import Telemetry, configure, current, flush
from otelkit._version import __version__
from otelkit.errors import (
    InvalidOptionError,
    MissingDependencyError,
    OptionTypeError,
    OtelkitError,
)

__all__ = [
    "InvalidOptionError",
    "MissingDependencyError",
    "OptionTypeError",
    "OtelkitError",
    "Telemetry",
    "__version__",
    "configure",
    "current",
    "flush",
]
