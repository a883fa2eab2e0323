"""otelkit: OpenTelemetry made practical for services that do background work.

``otelkit.configure()`` installs traces, metrics and logs in one call and returns a
:class:`Telemetry` handle. The capabilities live in subpackages: ``otelkit.coalesce``,
``otelkit.relay``, ``otelkit.jobs``, ``otelkit.preload``; test helpers in ``otelkit.testing``.
What leaves the process is scrubbed (``otelkit.scrubbing``, :class:`ScrubbingOptions`) and,
when asked, tail-sampled (``otelkit.sampling``, :class:`SamplingOptions`). Every ``clock=``
option takes a :class:`Clock` (``otelkit.testing.FakeClock`` in tests).

The names below are imported on first use: importing a submodule (the pytest plugin,
``otelkit.errors``) loads neither the OpenTelemetry SDK nor otelkit's process hooks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from otelkit._version import __version__
from otelkit.errors import (
    InvalidOptionError,
    MissingDependencyError,
    OptionTypeError,
    OtelkitError,
)

if TYPE_CHECKING:
    from otelkit._clock import Clock, TimerHandle
    from otelkit._configure import configure, current, flush
    from otelkit._telemetry import Telemetry
    from otelkit.sampling import SamplingOptions
    from otelkit.scrubbing import ScrubbingOptions

__all__ = [
    "Clock",
    "InvalidOptionError",
    "MissingDependencyError",
    "OptionTypeError",
    "OtelkitError",
    "SamplingOptions",
    "ScrubbingOptions",
    "Telemetry",
    "TimerHandle",
    "__version__",
    "configure",
    "current",
    "flush",
]

_LAZY = {
    "Clock": "otelkit._clock",
    "TimerHandle": "otelkit._clock",
    "Telemetry": "otelkit._telemetry",
    "configure": "otelkit._configure",
    "current": "otelkit._configure",
    "flush": "otelkit._configure",
    "SamplingOptions": "otelkit.sampling",
    "ScrubbingOptions": "otelkit.scrubbing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otelkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later reads do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
