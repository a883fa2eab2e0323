"""otelkit: OpenTelemetry made practical for services that do background work.

``otelkit.configure()`` installs traces, metrics and logs in one call and returns a
:class:`Telemetry` handle. The capabilities live in subpackages: ``otelkit.coalesce``,
``otelkit.relay``, ``otelkit.jobs``, ``otelkit.preload``; test helpers in ``otelkit.testing``.
What leaves the process is scrubbed (``otelkit.scrubbing``, :class:`ScrubbingOptions`) and,
when asked, tail-sampled (``otelkit.sampling``, :class:`SamplingOptions`).
"""

from otelkit._configure import configure, current, flush
from otelkit._telemetry import Telemetry
from otelkit._version import __version__
from otelkit.errors import InvalidOptionError, OptionTypeError, OtelkitError
from otelkit.sampling import SamplingOptions
from otelkit.scrubbing import ScrubbingOptions

__all__ = [
    "InvalidOptionError",
    "OptionTypeError",
    "OtelkitError",
    "SamplingOptions",
    "ScrubbingOptions",
    "Telemetry",
    "__version__",
    "configure",
    "current",
    "flush",
]
