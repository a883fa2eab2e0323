"""Records a second that one relay host exports for 4 children logging at once, against a
parent exporting what a stdlib ``QueueHandler`` -> ``QueueListener`` brings it through the
SDK's standard pipeline; both end in OTLP/HTTP (gzip) at a receiver in another process.

Each side is a fresh parent process with ``--children`` spawned children; each child logs
``--records`` records of the relay record shape flat out (``log.info("record %d from %s",
i, ..., extra={2 attributes})``) once every child is ready. The clock runs from that start
until the parent has exported everything (ours: ``shutdown()``, which reads what the
children wrote and flushes; baseline: the listener has handled every record and the
provider has flushed). The rate is the records the receiver decoded over that time. The
sides:

- ours: ``otelkit.configure(relay=True, endpoint=..., coalesce_window=False)`` in the
  parent (every record shares one template: coalescing off measures export), and
  ``otelkit.configure(service_name=...)`` in each child;
- baseline: each child's root logger has a ``QueueHandler`` on one
  ``multiprocessing.Queue``; the parent's ``QueueListener`` hands the records to the SDK's
  ``LoggingHandler`` -> ``LoggerProvider`` -> ``BatchLogRecordProcessor`` ->
  ``OTLPLogExporter(compression=gzip)``, with a queue as large as the run (the SDK counts
  nothing it drops, so it is given room to drop nothing).

Every run prints emitted = exported + counted drops + uncounted (ours: the children's
buffers hold 16,384 records each and the host reads them as fast as it exports, so a
child that outruns its host drops, counted). Target: ratio >= 3.

    .venv/bin/python benchmarks/relay_host_capacity.py [--children C] [--records N]
        [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from _export_common import cpu_seconds, receiver, sdk_log_pipeline
from _relay_common import HOST_OPTIONS, info_logger, log_drops, log_many


def _ours_child(name: str, records: int, ready: Any, start: Any) -> None:
    import otelkit

    otelkit.configure(service_name="bench-child")
    log = info_logger("bench.child")
    ready.release()
    start.wait()
    log_many(log, 0, records, name)
    # leaving flushes (configure()'s exit hook), bounded by its shutdown timeout


def _baseline_child(name: str, records: int, ready: Any, start: Any, queue: Any) -> None:
    logging.getLogger().addHandler(logging.handlers.QueueHandler(queue))
    log = info_logger("bench.child")
    ready.release()
    start.wait()
    log_many(log, 0, records, name)


def side(args: argparse.Namespace) -> None:
    mp = multiprocessing.get_context("spawn")
    ready, start = mp.Semaphore(0), mp.Event()
    total = args.children * args.records
    if args.side == "ours":
        import otelkit

        tel = otelkit.configure(
            service_name="bench-host", endpoint=args.endpoint, relay=True, **HOST_OPTIONS
        )
        target, extra = _ours_child, ()
    else:
        # the children's records, exported under the parent's one resource
        provider, handler = sdk_log_pipeline(args.endpoint, "bench-child", max_queue_size=total + 1)
        queue = mp.Queue()
        listener = logging.handlers.QueueListener(queue, handler)
        listener.start()
        target, extra = _baseline_child, (queue,)
    children = [
        mp.Process(target=target, args=(f"child-{k}", args.records, ready, start, *extra))
        for k in range(args.children)
    ]
    for child in children:
        child.start()
    for _ in children:
        ready.acquire()
    cpu, began = cpu_seconds(), time.perf_counter()
    start.set()
    for child in children:
        child.join()
    if args.side == "ours":
        tel.shutdown()
        dropped = log_drops(tel)
    else:
        listener.stop()  # handles every record still queued, then returns
        provider.force_flush()
        dropped = 0
    elapsed = time.perf_counter() - began
    parent_cpu = cpu_seconds() - cpu
    print(json.dumps({"elapsed": elapsed, "cpu": parent_cpu, "emitted": total, "dropped": dropped}))


def _run(args: argparse.Namespace, side_name: str, r: Any) -> dict[str, float]:
    r.reset()
    options = ["--children", str(args.children), "--records", str(args.records)]
    done = subprocess.run(
        [sys.executable, __file__, "--side", side_name, "--endpoint", r.endpoint, *options],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    # the children's records (the host's drop ledger also writes its report as a record)
    result["exported"] = r.counts().get("logs:bench-child", 0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--records", type=int, default=25_000, help="per child")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", choices=("baseline", "ours"))
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    if args.side:
        side(args)
        return
    rates: dict[str, list[float]] = {"baseline": [], "ours": []}
    names = {
        "baseline": "baseline (QueueHandler -> QueueListener -> SDK standard pipeline)",
        "ours": "ours (configure(relay=True))",
    }
    with receiver() as r:
        for repeat in range(args.repeats):
            for side_name in ("baseline", "ours") if repeat % 2 == 0 else ("ours", "baseline"):
                run = _run(args, side_name, r)
                rate = run["exported"] / run["elapsed"]
                rates[side_name].append(rate)
                lost = run["emitted"] - run["exported"] - run["dropped"]
                print(
                    f"repeat {repeat} {names[side_name]}: {rate:,.0f} records/s "
                    f"({run['elapsed']:.2f} s; parent CPU {run['cpu'] / run['exported'] * 1e6:.1f}"
                    f" µs/record exported); emitted {run['emitted']:.0f} = exported "
                    f"{run['exported']:.0f} + counted drops {run['dropped']:.0f} + uncounted "
                    f"{lost:.0f}",
                    flush=True,
                )
    ours, baseline = statistics.median(rates["ours"]), statistics.median(rates["baseline"])
    name = "relay_host_capacity" + ("" if args.children == 4 else f"_{args.children}_children")
    print(
        f"{name}: ratio={ours / baseline:.2f} "
        f"(ours={ours:,.0f} records/s, baseline={baseline:,.0f} records/s)"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
