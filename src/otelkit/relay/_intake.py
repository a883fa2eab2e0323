"""The host's side of a frame: a child's records and drop counts into the host's pipeline.

:class:`~otelkit.relay.RelayHost` owns the sockets and hands every whole frame here, on its
one serving thread. Log records and spans go to the host's processors (its coalescer and
batch processors treat them like its own), metric batches to the host's metric exporter,
a child's drop report to the drop ledger; all of it is counted in ``RelayHost.stats`` and
the ``otelkit.relay.records`` / ``otelkit.relay.dropped`` counters. A frame is decoded and
checked in full before any of it is emitted; one that does not decode raises
:class:`~otelkit.relay._wire.FrameError`, and the host closes that connection.
"""

from __future__ import annotations

from opentelemetry.metrics import Meter
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.trace import SpanProcessor

from otelkit._drops import DropLedger
from otelkit._errors import report_internal_error
from otelkit.relay._decode import Decoder
from otelkit.relay._host_metrics import RelayedMetrics
from otelkit.relay._metrics import count_points, decode_metrics_request
from otelkit.relay._wire import FRAME_DROPS, FRAME_LOGS, FRAME_METRICS, FRAME_SPANS, decode_drops

__all__ = ["Intake"]

_SIGNALS = ("logs", "spans", "metrics")
_CHUNK = 256  # records built and handed on at once (a frame's are never all SDK objects)


class Intake:
    """Emits the records of children's frames into the host's processors and exporter."""

    def __init__(
        self,
        *,
        span_processor: SpanProcessor,
        log_processor: LogRecordProcessor,
        metrics: RelayedMetrics | None,
        ledger: DropLedger,
        meter: Meter,
        stats: dict[str, int],
    ) -> None:
        self._spans = span_processor
        self._logs = log_processor
        self._metrics = metrics
        self._ledger = ledger
        self._stats = stats
        self._m_records = meter.create_counter(
            "otelkit.relay.records", unit="{record}", description="Records received from children"
        )
        self._m_dropped = meter.create_counter(
            "otelkit.relay.dropped",
            unit="{record}",
            description="Records children dropped because their buffer was full "
            "(data points for metrics)",
        )

    def handle(self, decoder: Decoder, frame_type: int, payload: bytes) -> None:
        """Emit one frame of a connection whose decoder is ``decoder``."""
        if frame_type == FRAME_LOGS:
            self._logs_frame(decoder, payload)
        elif frame_type == FRAME_SPANS:
            self._spans_frame(decoder, payload)
        elif frame_type == FRAME_DROPS:
            self.add_drops(*decode_drops(payload))
        elif frame_type == FRAME_METRICS:
            self._metrics_frame(payload)

    def count_unread(self, decoder: Decoder, frame_type: int, payload: bytes) -> None:
        """A frame the host had no time left to read at close: its records are counted as
        dropped (``shutdown``) without being built; a drop report still counts as sent."""
        if frame_type == FRAME_DROPS:
            self.add_drops(*decode_drops(payload))
            return
        if frame_type == FRAME_LOGS:
            signal, n = "logs", decoder.count_logs(payload)
        elif frame_type == FRAME_SPANS:
            signal, n = "spans", decoder.count_spans(payload)
        else:
            signal, n = "metrics", count_points(decode_metrics_request(payload))
        self._ledger.add(signal, "shutdown", n)

    def close(self, timeout: float) -> None:
        """Export the metric batches still queued, within ``timeout`` seconds."""
        if self._metrics is not None:
            self._metrics.close(timeout)

    def _logs_frame(self, decoder: Decoder, payload: bytes) -> None:
        # Checked in full first (a bad frame emits nothing); the SDK records are built a
        # chunk at a time, just before they are emitted.
        rows = decoder.log_rows(payload)
        emit = self._logs.on_emit
        for start in range(0, len(rows), _CHUNK):
            for record in decoder.build_logs(rows[start : start + _CHUNK]):
                try:
                    emit(record)
                except Exception as exc:  # noqa: BLE001 - a processor bug is not the child's fault
                    self._processor_error("logs", exc)
        self._received("logs", len(rows))

    def _spans_frame(self, decoder: Decoder, payload: bytes) -> None:
        spans = decoder.spans(payload)
        emit = self._spans.on_end
        for span in spans:
            try:
                emit(span)
            except Exception as exc:  # noqa: BLE001 - as for logs
                self._processor_error("spans", exc)
        self._received("spans", len(spans))

    def _metrics_frame(self, payload: bytes) -> None:
        data = decode_metrics_request(payload)  # FrameError closes this connection only
        points = count_points(data)
        self._received("metric_points", points, signal="metrics")
        if self._metrics is None:
            self._ledger.add("metrics", "no_metric_exporter", points)
        else:
            self._metrics.offer(data)

    def _processor_error(self, signal: str, exc: Exception) -> None:
        report_internal_error("relay.host", exc)
        self._ledger.add(signal, "processor_error", 1)

    def _received(self, key: str, n: int, *, signal: str | None = None) -> None:
        self._stats[key] += n
        self._m_records.add(n, {"otelkit.relay.signal": signal or key})

    def add_drops(self, *counts: int) -> None:
        """A child's drop report: counted per signal and handed to the drop ledger."""
        for signal, n in zip(_SIGNALS, counts, strict=True):
            if n:
                key = "dropped_metric_points" if signal == "metrics" else f"dropped_{signal}"
                self._stats[key] += n
                self._m_dropped.add(n, {"otelkit.relay.signal": signal})
                self._ledger.add(signal, "child_buffer_full", n)
