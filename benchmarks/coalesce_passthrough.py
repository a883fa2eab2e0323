"""What coalescing costs when nothing repeats.

Each operation creates and ends a span and makes a stdlib ``logging`` call (through the
OTel ``LoggingHandler``), every span name and message distinct. Ours: the coalescing span
and log processors in front of batch processors with no-op exporters. Baseline: the same
pipeline without them. Small blocks of operations alternate between the two; the cost is
the calling thread's CPU time (``time.thread_time``, less sensitive to other load on the
machine; the exporters' own threads are the same on both sides); the ratio is the
median of the per-repeat ratios (ours and baseline in the line are the medians of each
side). Target: <= 1.05.

With the defaults (``max_keys`` 10,000, window 10 s) windows open at up to 1,000 a second
per signal, whatever the traffic; beyond that new keys pass through as overflow. So the
share of operations that open windows depends on how many operations a second the run
makes, which depends on this machine (the run prints the share: about a third on the
reference machine since windows stopped costing the garbage collector, nearly all
before). ``--rate R`` fixes it: the processors get an ``otelkit.testing.FakeClock`` that
moves ``1/R`` seconds per operation (a service making R distinct operations a second;
windows then close between blocks, outside the measured time, as they do on the timer
thread with the real clock). The opening path alone (every operation opens two windows):
``--rate 500``, or ``--window 0.2`` with the real clock (windows close on the timer thread
before the table fills). ``--max-keys 1`` is the overflow path alone (every new key
arrives while the table is full), and ``--aa`` runs the baseline against itself, to show
the method's own bias and noise.

The same measurement then runs again in a subprocess with ``OTELKIT_SDK_FALLBACKS=1`` (every
shortcut of ``otelkit._sdk`` off: the public-API paths) and prints its line
(``--no-fallback-run`` skips it); the last line is the run with the shortcuts on.

    .venv/bin/python benchmarks/coalesce_passthrough.py [--max-keys K] [--window W] [--rate R] [--aa]
        [--blocks B] [--block-ops N] [--repeats R]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otelkit.coalesce import CoalescingLogRecordProcessor, CoalescingSpanProcessor
from otelkit.testing import FakeClock

_counter = itertools.count()


class NoopSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class NoopLogs(LogRecordExporter):
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Pipeline:
    def __init__(
        self,
        *,
        coalesce: bool,
        max_keys: int = 10_000,
        window: float = 10.0,
        clock: FakeClock | None = None,
    ) -> None:
        self.tracer_provider = TracerProvider(shutdown_on_exit=False)
        self.logger_provider = LoggerProvider(shutdown_on_exit=False)
        self.coalescing: CoalescingSpanProcessor | None = None
        self.operations = 0
        span_processor: SpanProcessor = BatchSpanProcessor(NoopSpans())
        log_processor: LogRecordProcessor = BatchLogRecordProcessor(NoopLogs())
        if coalesce:
            meters = MeterProvider(shutdown_on_exit=False)
            span_processor = self.coalescing = CoalescingSpanProcessor(
                span_processor, meter_provider=meters, max_keys=max_keys, window=window, clock=clock
            )
            log_processor = CoalescingLogRecordProcessor(
                log_processor, meter_provider=meters, max_keys=max_keys, window=window, clock=clock
            )
        self.tracer_provider.add_span_processor(span_processor)
        self.logger_provider.add_log_record_processor(log_processor)
        self.tracer = self.tracer_provider.get_tracer("bench")
        self.logger = logging.getLogger(f"bench.passthrough.{next(_counter)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(LoggingHandler(logger_provider=self.logger_provider))

    def run(self, ops: int, offset: int) -> float:
        tracer, logger = self.tracer, self.logger
        self.operations += ops
        gc.collect()
        start = time.thread_time()
        for i in range(offset, offset + ops):
            with tracer.start_as_current_span(f"op {i}"):
                logger.warning("event %d happened", i)
        return (time.thread_time() - start) / ops

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=60, help="blocks per repeat")
    parser.add_argument("--block-ops", type=int, default=200, help="operations per block")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--max-keys", type=int, default=10_000, help="the processors' max_keys")
    parser.add_argument("--window", type=float, default=10.0, help="the processors' window (s)")
    parser.add_argument("--aa", action="store_true", help="baseline against itself")
    parser.add_argument("--rate", type=float, help="distinct operations a second (fake clock)")
    parser.add_argument(
        "--no-fallback-run", action="store_true", help="skip the run with the shortcuts off"
    )
    args = parser.parse_args()
    if args.rate is not None and not args.rate > 0:
        parser.error("--rate must be > 0")
    clock = FakeClock() if args.rate is not None else None
    if not args.window > 0:
        parser.error("--window must be > 0")
    ours = Pipeline(coalesce=not args.aa, max_keys=args.max_keys, window=args.window, clock=clock)
    baseline = Pipeline(coalesce=False)
    ours.run(2000, 0)  # warm up
    baseline.run(2000, 0)
    ours_times: list[float] = []
    base_times: list[float] = []
    offset = 10_000
    for repeat in range(args.repeats):
        # Small alternating blocks: both sides see the same machine load.
        ours_total = base_total = 0.0
        for block in range(args.blocks):
            if block % 2 == 0:
                ours_total += ours.run(args.block_ops, offset)
                base_total += baseline.run(args.block_ops, offset)
            else:
                base_total += baseline.run(args.block_ops, offset)
                ours_total += ours.run(args.block_ops, offset)
            offset += args.block_ops
            if clock is not None:
                clock.advance(args.block_ops / args.rate)
        ours_times.append(ours_total / args.blocks)
        base_times.append(base_total / args.blocks)
        print(
            f"repeat {repeat}: ours={ours_times[-1] * 1e6:.2f} us/op "
            f"baseline={base_times[-1] * 1e6:.2f} us/op "
            f"ratio={ours_times[-1] / base_times[-1]:.3f}"
        )
    if ours.coalescing is not None:
        # Which case the run measured: windows open at up to max_keys per window whatever
        # the traffic, so their share depends on how many operations a second the run made.
        engine = ours.coalescing.coalescer
        opened = ours.operations - engine.overflow - engine.suppressed
        print(f"windows opened for {opened / ours.operations:.0%} of the operations")
    ours.shutdown()
    baseline.shutdown()
    a, b = statistics.median(ours_times) * 1e6, statistics.median(base_times) * 1e6
    # The headline is the median of the per-repeat ratios: each repeat measures both sides
    # interleaved under the same machine load, while the two medians may come from repeats
    # run under different load (on a shared machine their ratio swings more).
    paired = statistics.median(o / t for o, t in zip(ours_times, base_times, strict=True))
    print(f"ratio of the medians: {a / b:.3f}")
    line = f"ratio={paired:.3f} (ours={a:.2f} us/op, baseline={b:.2f} us/op)"
    if os.environ.get("OTELKIT_SDK_FALLBACKS") != "1" and not args.no_fallback_run:
        print(f"with OTELKIT_SDK_FALLBACKS=1: {fallback_run()}", flush=True)
    print(f"coalesce_passthrough: {line}")


def fallback_run() -> str:
    """The same arguments in a subprocess with every SDK shortcut off: its ratio line."""
    env = {**os.environ, "OTELKIT_SDK_FALLBACKS": "1"}
    argv = [sys.executable, __file__, *sys.argv[1:], "--no-fallback-run"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1].removeprefix("coalesce_passthrough: ")


if __name__ == "__main__":
    main()
