"""Fast OTLP export: protobuf bytes written directly, sent by the SDK's OTLP/HTTP clients.

:func:`encode_logs` and :func:`encode_spans` give the serialized export request the SDK's
``encode_logs(batch).SerializeToString()`` and ``encode_spans(spans).SerializeToString()``
give, at a fraction of the cost (:func:`span_message` is one span's part of it, for the
relay's requests); :class:`OtlpHttpLogExporter` and
:class:`OtlpHttpSpanExporter` are what ``otelkit.configure()`` exports OTLP/HTTP with.
"""

from otelkit.export._http import OtlpHttpLogExporter, OtlpHttpSpanExporter
from otelkit.export._logs import encode_logs
from otelkit.export._spans import encode_spans, span_message

__all__ = [
    "OtlpHttpLogExporter",
    "OtlpHttpSpanExporter",
    "encode_logs",
    "encode_spans",
    "span_message",
]
