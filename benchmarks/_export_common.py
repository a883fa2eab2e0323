"""What the export benchmarks share: a receiver in another process, one process per
measured side, process CPU (user + sys, every thread) per record, and the report.

Each side runs in a fresh interpreter (``configure()`` installs global providers), the
sides alternate, and each is repeated; the figures are the medians of the repeats. A side
prints one JSON line: ``{"cpu": seconds, "emitted": n, "dropped": n}`` (``dropped`` is what
the pipeline counted; the SDK's standard pipeline counts nothing), and the receiver says
how many records arrived.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_RECEIVER = Path(__file__).with_name("_otlp_receiver.py")


class Receiver:
    """The OTLP/HTTP receiver process (``_otlp_receiver.py``)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(_RECEIVER)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.endpoint = f"http://127.0.0.1:{int(self.process.stdout.readline())}"

    def counts(self) -> dict[str, int]:
        with urllib.request.urlopen(self.endpoint + "/counts", timeout=10) as answer:
            counts: dict[str, int] = json.load(answer)
        return counts

    def reset(self) -> None:
        request = urllib.request.Request(self.endpoint + "/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@contextlib.contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def add_run_arguments(
    parser: argparse.ArgumentParser, count: str, default: int, burst: int, sides: tuple[str, ...]
) -> None:
    """The options every export benchmark takes: ``--<count>`` records, ``--burst``,
    ``--pause``, ``--repeats``; ``--side`` and ``--endpoint`` for its side processes."""
    parser.add_argument(f"--{count}", type=int, default=default)
    parser.add_argument("--burst", type=int, default=burst)
    parser.add_argument("--pause", type=float, default=0.04)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", choices=sides)
    parser.add_argument("--endpoint")


def passed_on(args: argparse.Namespace, count: str) -> list[str]:
    """The options a side process gets from the benchmark's own."""
    options = {f"--{count}": getattr(args, count), "--burst": args.burst, "--pause": args.pause}
    return [str(part) for option in options.items() for part in option]


def cpu_seconds() -> float:
    """This process's CPU time so far, every thread, user + sys."""
    t = os.times()
    return t.user + t.system


class Measure:
    """Process CPU (every thread) and the calling thread's CPU over the ``with`` block."""

    def __enter__(self) -> Measure:
        self._process, self._thread = cpu_seconds(), time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = cpu_seconds() - self._process
        self.app = time.thread_time() - self._thread


def measure_side(
    warm_up: Callable[[], object],
    work: Callable[[], object],
    flush: Callable[[], object] | None,
    telemetry: Any,
    signal: str,
    count: int,
) -> None:
    """A side's run: ``warm_up()`` (one record) and a flush, then ``work()`` (``count``
    records) and a flush, measured; prints the result with the drops ``telemetry``
    (otelkit's, if given) counted for ``signal``."""
    warm_up()
    if flush is not None:
        flush()
    with Measure() as measured:
        work()
        if flush is not None:
            flush()
    dropped = 0
    if telemetry is not None:
        dropped = sum(n for (s, _), n in telemetry.dropped().items() if s == signal)
    side_result(measured, count, dropped)


def side_result(measured: Measure, emitted: int, dropped: int, warmup: int = 1) -> None:
    """What a side process prints last (``warmup``: records sent before the measurement)."""
    result = {
        "cpu": measured.cpu,
        "app": measured.app,
        "emitted": emitted,
        "dropped": dropped,
        "warmup": warmup,
    }
    print(json.dumps(result), flush=True)


class _Nothing(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        pass


def install_floor() -> None:
    """The floor side's logging: a handler on the root logger that does nothing."""
    logging.getLogger().addHandler(_Nothing())


def sdk_log_pipeline(endpoint: str, service_name: str, **batch_options: Any) -> Any:
    """The SDK's standard log pipeline to ``endpoint``: ``LoggingHandler`` ->
    ``LoggerProvider`` -> ``BatchLogRecordProcessor(**batch_options)`` ->
    ``OTLPLogExporter(compression=gzip)``. Returns ``(provider, handler)``."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", compression=Compression.Gzip)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, **batch_options))
    return provider, LoggingHandler(logger_provider=provider)


@dataclass
class Run:
    side: str
    cpu: float
    app: float  # the application thread's share of cpu
    emitted: int
    exported: int
    dropped: int

    @property
    def per_record_us(self) -> float:
        return self.cpu / self.emitted * 1e6


def run_side(script: str, side: str, r: Receiver, signal: str, args: list[str]) -> Run:
    r.reset()
    done = subprocess.run(
        [sys.executable, script, "--side", side, "--endpoint", r.endpoint, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    exported = r.counts()[signal] - result["warmup"]
    if side == "floor":
        exported = result["emitted"]
    return Run(side, result["cpu"], result["app"], result["emitted"], exported, result["dropped"])


def compare(
    name: str,
    script: str,
    signal: str,
    args: list[str],
    repeats: int,
    sides: tuple[str, ...] = ("floor", "baseline", "ours"),
    describe: Callable[[str], str] = str,
) -> None:
    """Run every side ``repeats`` times, alternating, print each run and the ratio line
    (``ours`` against ``baseline``, medians of the repeats)."""
    runs: dict[str, list[Run]] = {side: [] for side in sides}
    with receiver() as r:
        for repeat in range(repeats):
            order = sides if repeat % 2 == 0 else tuple(reversed(sides))
            for side in order:
                run = run_side(script, side, r, signal, args)
                runs[side].append(run)
                lost = run.emitted - run.exported - run.dropped
                app = run.app / run.emitted * 1e6
                print(
                    f"repeat {repeat} {describe(side)}: {run.per_record_us:.1f} µs/record "
                    f"(application thread {app:.1f}, other threads "
                    f"{run.per_record_us - app:.1f}); "
                    f"emitted {run.emitted} = exported {run.exported} + counted drops "
                    f"{run.dropped} + uncounted {lost}",
                    flush=True,
                )
            time.sleep(0.2)
    med = {side: statistics.median(x.per_record_us for x in runs[side]) for side in sides}
    for beside in (side for side in sides if side not in ("ours", "baseline")):
        print(
            f"{describe(beside)}: {med[beside]:.1f} µs/record (median; "
            f"{med[beside] / med['baseline']:.3f} of the baseline)"
        )
    ours, baseline = med["ours"], med["baseline"]
    print(
        f"{name}: ratio={ours / baseline:.3f} "
        f"(ours={ours:.1f} µs/record, baseline={baseline:.1f} µs/record)"
    )
