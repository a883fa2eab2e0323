"""otelkit: OpenTelemetry made practical for services that do background work."""

from otelkit._version import __version__

__all__ = ["__version__"]
