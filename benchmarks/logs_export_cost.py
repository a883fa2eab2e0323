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
- floor: the same logging calls into a handler that does nothing (printed beside).

Every run prints emitted = exported (what the receiver decoded) + counted drops + uncounted
(the SDK's queue drops without a count). Target: ratio <= 0.30.

    .venv/bin/python benchmarks/logs_export_cost.py [--records N] [--burst B] [--pause S]
        [--repeats R] [--no-coalesce]
"""

from __future__ import annotations

import argparse
import functools
import logging
import time

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


def side(args: argparse.Namespace) -> None:
    log = logging.getLogger("shop.checkout")
    tel = None
    if args.side == "floor":
        install_floor()
        flush = None
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
    add_run_arguments(parser, "records", 50_000, 1000, ("floor", "baseline", "ours"))
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
    }
    compare("logs_export_cost", __file__, "logs", passed, args.repeats, describe=names.get)


if __name__ == "__main__":
    main()
