"""What a suppressed log record costs, compared with one that is forwarded and exported.

Both go through the same pipeline: ``CoalescingLogRecordProcessor`` -> ``BatchLogRecordProcessor``
-> OTLP/HTTP exporter -> a receiver in another process (so its decoding is not counted).
Ours: records repeating one key inside its window (suppressed: counted, not exported).
Baseline: records with distinct keys (forwarded: each opens a window and is exported).
The cost is this process's CPU time (``time.process_time``: the caller and the exporter's
thread) per record, including the flush of everything forwarded; medians over repeats.
Target: ratio <= 0.3.

    .venv/bin/python benchmarks/coalesce_suppressed_cost.py [--records N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from coalesce_flood import Capture  # this script's neighbour in benchmarks/
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from otelkit.coalesce import CoalescingLogRecordProcessor
from otelkit.testing import FakeClock

_SINK = (
    "import sys, time\n"
    "from otelkit.testing import OtlpSink\n"
    "sink = OtlpSink()\n"
    "print(sink.endpoint, flush=True)\n"
    "sys.stdin.read()\n"
)


def build(count: int, *, distinct: bool) -> list[ReadWriteLogRecord]:
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "cost"}), shutdown_on_exit=False
    )
    capture = Capture()
    provider.add_log_record_processor(capture)
    logger = provider.get_logger("media.scanner")
    for i in range(count if distinct else 1):
        logger.emit(
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=f"upstream 10.0.0.{i % 250} refused the connection (attempt {i})",
        )
    return capture.records if distinct else capture.records * count


def measure(processor: CoalescingLogRecordProcessor, records: list[ReadWriteLogRecord]) -> float:
    on_emit = processor.on_emit
    start = time.process_time()
    for record in records:
        on_emit(record)
    processor.downstream.force_flush(60_000)  # export what was forwarded
    return (time.process_time() - start) / len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    sink = subprocess.Popen(
        [sys.executable, "-c", _SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert sink.stdout is not None
        endpoint = sink.stdout.readline().strip()
        clock = FakeClock()
        exporter = OTLPLogExporter(endpoint=endpoint + "/v1/logs", timeout=30)
        processor = CoalescingLogRecordProcessor(
            BatchLogRecordProcessor(exporter, max_queue_size=args.records + 2048),
            clock=clock,
            max_keys=args.records + 1,
            meter_provider=MeterProvider(),
        )
        suppressed_costs: list[float] = []
        forwarded_costs: list[float] = []
        for repeat in range(args.repeats):
            repeated = build(args.records + 1, distinct=False)
            distinct = build(args.records, distinct=True)
            processor.on_emit(repeated[0])  # opens the window: the rest are suppressed
            suppressed_costs.append(measure(processor, repeated[1:]))
            forwarded_costs.append(measure(processor, distinct))
            clock.advance(60)  # close every window before the next repeat
            processor.force_flush(60_000)
            print(
                f"repeat {repeat}: suppressed={suppressed_costs[-1] * 1e6:.2f} us/record "
                f"forwarded={forwarded_costs[-1] * 1e6:.2f} us/record"
            )
        processor.shutdown()
    finally:
        if sink.stdin is not None:
            sink.stdin.close()
        try:
            sink.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait(timeout=10)
    a = statistics.median(suppressed_costs) * 1e6
    b = statistics.median(forwarded_costs) * 1e6
    print(
        f"coalesce_suppressed_cost: ratio={a / b:.3f} "
        f"(ours={a:.2f} us/record, baseline={b:.2f} us/record)"
    )


if __name__ == "__main__":
    main()
