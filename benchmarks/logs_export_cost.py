"""CPU per log record on the pipeline users run: ``otelkit.configure()`` against the SDK's
standard pipeline, both exporting OTLP/HTTP with gzip to a receiver in another process.

Each side is a fresh process that makes ``--records`` distinct ``log.warning(...)`` calls
in bursts of ``--burst`` with a ``--pause`` between bursts (a busy service, not a flood:
``--pause 0`` floods), then flushes; its cost is the process's CPU time (user + sys, the
application thread and the export thread) from the first call to the end of the flush,
divided by the calls. The sides:

- ours: ``otelkit.configure(endpoint=...)`` as a user calls it (its defaults: coalescing on;
  ``--no-coalesce`` passes ``coalesce_window=False``), logging through the root logger;
- baseline: the SDK's standard pipeline, ``LoggingHandler`` -> ``LoggerProvider`` ->
  ``BatchLogRecordProcessor`` -> ``OTLPLogExporter(compression=gzip)``;
- floor: the same logging calls into a handler that does nothing (printed beside);
- minimal: the least an exporter of the same bytes can do, printed beside as a bound:
  a handler that maps each record with otelkit's mapping, writes its OTLP message with
  otelkit's encoder and, every 512 records, gzips the request (level 6) and posts it, all
  in the calling thread: no processors, no queue, no export thread.

Every run prints emitted = exported (what the receiver decoded) + counted drops + uncounted
(the SDK's queue drops without a count). Target: ratio <= 0.30.

    .venv/bin/python benchmarks/logs_export_cost.py [--records N] [--burst B] [--pause S]
        [--repeats R] [--no-coalesce]
"""

from __future__ import annotations

import argparse
import functools
import gzip
import logging
import time
import urllib.request

from _export_common import (
    add_run_arguments,
    compare,
    install_floor,
    measure_side,
    passed_on,
    sdk_log_pipeline,
)


def _workload(log: logging.Logger, records: int, burst: int, pause: float) -> None:
    for start in range(0, records, burst):
        for i in range(start, min(start + burst, records)):
            log.warning("event %d happened", i)
        if pause:
            time.sleep(pause)


class _Minimal(logging.Handler):
    """The ``minimal`` side's handler (see the module): mapping, encoding, gzip and a post
    per 512 records, nothing else."""

    def __init__(self, endpoint: str) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from otelkit._levels import std_to_otel
        from otelkit._logmapping import message, record_attributes, severity_text
        from otelkit.export._logs import log_record_field
        from otelkit.export._protobuf import Encoded, any_value, export_request

        super().__init__()
        self.url = f"{endpoint}/v1/logs"
        self.pending: list[bytes] = []
        resource = Resource.create({"service.name": "bench"})
        scope = InstrumentationScope("shop.checkout")

        def write(record: logging.LogRecord) -> bytes:
            attributes, event_name = record_attributes(record)
            return log_record_field(
                *(int(record.created * 1e9), std_to_otel(record.levelno).value),
                *(severity_text(record.levelname), any_value(message(record)), attributes),
                *(0, 0, 0, 0, time.time_ns(), event_name),
            )

        def request(messages: list[bytes]) -> bytes:
            return export_request((Encoded(resource, scope, m) for m in messages), bytes)

        self.write, self.request = write, request

    def emit(self, record: logging.LogRecord) -> None:
        self.pending.append(self.write(record))
        if len(self.pending) >= 512:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        data = gzip.compress(self.request(self.pending), 6)
        self.pending = []
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
        request = urllib.request.Request(self.url, data=data, headers=headers)
        urllib.request.urlopen(request, timeout=10).close()


def side(args: argparse.Namespace) -> None:
    log = logging.getLogger("shop.checkout")
    tel = None
    if args.side == "floor":
        install_floor()
        flush = None
    elif args.side == "minimal":
        handler = _Minimal(args.endpoint)
        logging.getLogger().addHandler(handler)
        flush = handler.flush
    elif args.side == "baseline":
        provider, handler = sdk_log_pipeline(args.endpoint, "bench")
        logging.getLogger().addHandler(handler)
        flush = provider.force_flush
    else:
        import otelkit

        options = {"coalesce_window": False} if args.no_coalesce else {}
        tel = otelkit.configure(service_name="bench", endpoint=args.endpoint, **options)
        flush = tel.force_flush
    work = functools.partial(_workload, log, args.records, args.burst, args.pause)
    measure_side(lambda: log.warning("warm-up"), work, flush, tel, "logs", args.records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sides = ("floor", "minimal", "baseline", "ours")
    add_run_arguments(parser, "records", 50_000, 1000, sides)
    parser.add_argument("--no-coalesce", action="store_true")
    args = parser.parse_args()
    if args.side:
        side(args)
        return
    passed = passed_on(args, "records") + (["--no-coalesce"] if args.no_coalesce else [])
    names = {
        "floor": "floor (logging into a no-op handler)",
        "baseline": "baseline (SDK LoggingHandler -> BatchLogRecordProcessor -> OTLPLogExporter)",
        "ours": "ours (otelkit.configure())",
        "minimal": "minimal (map, encode, gzip, post: no pipeline)",
    }
    compare("logs_export_cost", __file__, "logs", passed, args.repeats, sides, names.get)


if __name__ == "__main__":
    main()
