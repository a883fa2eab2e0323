"""A warning flood on the wire: 10,000 repeats of each of 100 warnings inside one window.

Both sides export over OTLP/HTTP (protobuf) to a local receiver (``otelkit.testing.OtlpSink``)
through a ``BatchLogRecordProcessor`` large enough to drop nothing. Ours puts the coalescing
log processor in front (window 10 s on an injected clock, so the whole flood falls in one
window whatever the machine's speed). Measured: bytes received and records received. Also
checked: the first occurrence of every warning reached the receiver before the window
ended. Target: ours <= 5 % of the baseline's bytes.

    .venv/bin/python benchmarks/coalesce_flood.py [--keys K] [--repeats N]
"""

from __future__ import annotations

import argparse
import time

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from otelkit.coalesce import COUNT_ATTRIBUTE, CoalescingLogRecordProcessor
from otelkit.testing import FakeClock, OtlpSink, proto_attributes, wait_until

WINDOW = 10.0


def flood(processor: LogRecordProcessor, keys: int, repeats: int) -> float:
    """Offer each of ``keys`` warnings ``repeats`` times, interleaved.

    Each warning's record is built once (by the SDK logger) and handed to the processor
    ``repeats`` times, as a logging bridge hands over equal records; building a million
    records would only slow both sides alike.
    """
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "flood"}), shutdown_on_exit=False
    )
    capture = Capture()
    provider.add_log_record_processor(capture)
    logger = provider.get_logger("media.scanner")
    for k in range(keys):
        logger.emit(
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=f"blocked request from 10.0.{k // 256}.{k % 256}: rule {k} matched",
        )
    records = capture.records
    on_emit = processor.on_emit
    start = time.perf_counter()
    for _ in range(repeats):
        for record in records:
            on_emit(record)
    return time.perf_counter() - start


class Capture(LogRecordProcessor):
    """Keeps what the SDK logger built."""

    def __init__(self) -> None:
        self.records: list[ReadWriteLogRecord] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.records.append(log_record)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def batch(sink: OtlpSink, total: int) -> BatchLogRecordProcessor:
    exporter = OTLPLogExporter(endpoint=sink.endpoint + "/v1/logs", timeout=30)
    return BatchLogRecordProcessor(
        exporter, max_queue_size=max(2048, total + 1024), max_export_batch_size=2048
    )


def run_baseline(keys: int, repeats: int) -> tuple[int, int, float]:
    sink = OtlpSink()
    try:
        processor = batch(sink, keys * repeats)
        seconds = flood(processor, keys, repeats)
        processor.force_flush(300_000)
        wait_until(lambda: len(sink.logs()) >= keys * repeats, timeout=120)
        processor.shutdown()
        return sink.bytes_received, len(sink.logs()), seconds
    finally:
        sink.close()


def run_ours(keys: int, repeats: int) -> tuple[int, int, float]:
    sink = OtlpSink()
    clock = FakeClock()
    try:
        downstream = batch(sink, keys * repeats)
        processor = CoalescingLogRecordProcessor(
            downstream, window=WINDOW, clock=clock, meter_provider=MeterProvider()
        )
        seconds = flood(processor, keys, repeats)
        # Still inside the window: every first occurrence must already be out.
        downstream.force_flush(60_000)
        wait_until(lambda: len(sink.logs()) >= keys, timeout=60)
        firsts = {record.body.string_value for _, record in sink.logs()}
        assert len(firsts) == keys, f"{len(firsts)} of {keys} first occurrences before window end"
        clock.advance(WINDOW)  # the window ends: one summary per warning
        processor.force_flush(60_000)
        wait_until(lambda: len(sink.logs()) >= 2 * keys, timeout=60)
        counts = [
            proto_attributes(record.attributes).get(COUNT_ATTRIBUTE) for _, record in sink.logs()
        ]
        assert sorted(c for c in counts if c is not None) == [repeats] * keys, "summary counts"
        processor.shutdown()
        return sink.bytes_received, len(sink.logs()), seconds
    finally:
        sink.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10_000)
    args = parser.parse_args()
    ours_bytes, ours_records, ours_s = run_ours(args.keys, args.repeats)
    print(f"ours:     {ours_records} records, {ours_bytes} bytes ({ours_s:.1f} s to emit)")
    base_bytes, base_records, base_s = run_baseline(args.keys, args.repeats)
    print(f"baseline: {base_records} records, {base_bytes} bytes ({base_s:.1f} s to emit)")
    print("first occurrence of each warning exported before the window ended: yes")
    print(
        f"coalesce_flood: ratio={ours_bytes / base_bytes:.5f} "
        f"(ours={ours_bytes} bytes, baseline={base_bytes} bytes)"
    )


if __name__ == "__main__":
    main()
