"""otelkit: OpenTelemetry made practical for services that do background work.

``otelkit.configure()`` installs traces, metrics and logs in one call and returns a
:class:`Telemetry` handle. The capabilities live in subpackages: ``otelkit.coalesce``,
``otelkit.relay``, ``otelkit.jobs``, ``otelkit.preload``; test helpers in ``otelkit.testing``.

The handle and ``configure()`` are imported on first use: importing a submodule (the pytest
plugin, ``otelkit.errors``) loads neither the OpenTelemetry SDK nor otelkit's process hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otelkit._version import __version__
from otelkit.errors import InvalidOptionError, OptionTypeError, OtelkitError

if TYPE_CHECKING:
    from otelkit._telemetry import Telemetry, configure, current, flush

__all__ = [
    "InvalidOptionError",
    "OptionTypeError",
    "OtelkitError",
    "Telemetry",
    "__version__",
    "configure",
    "current",
    "flush",
]

_FROM_TELEMETRY = frozenset({"Telemetry", "configure", "current", "flush"})


def __getattr__(name: str) -> Any:
    if name in _FROM_TELEMETRY:
        from otelkit import _telemetry

        value = getattr(_telemetry, name)
        globals()[name] = value  # once: later reads do not come here
        return value
    raise AttributeError(f"module 'otelkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
