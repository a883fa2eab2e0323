"""Fast OTLP export: protobuf bytes written directly, sent by the SDK's OTLP/HTTP clients.

:class:`OtlpHttpLogExporter` and :class:`OtlpHttpSpanExporter` are what
``otelkit.configure()`` exports OTLP/HTTP with: each sends the bytes the SDK's own encoding
would give, at a fraction of the cost (see ``docs/export.md``).
"""

from otelkit.export._http import OtlpHttpLogExporter, OtlpHttpSpanExporter

__all__ = ["OtlpHttpLogExporter", "OtlpHttpSpanExporter"]
