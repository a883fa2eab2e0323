"""scrub_cost: CPU per log record with default scrubbing vs scrubbing off.

Each side is a fresh process that calls ``otelkit.configure()`` as a user would (OTLP/HTTP
to a receiver in this process, coalescing off so that every record is exported) and logs
the same records through stdlib ``logging``: a formatted message with two extras, and one
record in a hundred carrying a card number and an ``api_key`` extra (so the replacing path
is measured too, not only the search). CPU time (``time.process_time``, all threads) is
taken from the first measured logging call until ``force_flush()`` has exported
everything, so it includes the SDK's record building and the OTLP encoding. The sides
alternate; the ratio is of the medians. Target: <= 1.25.

    .venv/bin/python benchmarks/scrub_cost.py [records] [repeats]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import installed_bytecode, median, ratio_line

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 5

CHILD = """
import logging, sys, time
import otelkit

endpoint, scrubbing, n = sys.argv[1], sys.argv[2] == "on", int(sys.argv[3])
tel = otelkit.configure(
    service_name="bench", endpoint=endpoint, coalesce_window=False, scrubbing=scrubbing,
    metric_interval=3600,
)
log = logging.getLogger("bench.scrub")
log.setLevel(logging.INFO)
log.propagate = True

def run(count):
    for i in range(count):
        if i % 100 == 0:
            log.info("card %s declined for order %d", "4000-0000-0000-0002", i,
                     extra={"api_key": "k-123", "tier": "gold"})
        else:
            log.info("record %d from %s", i, "worker", extra={"job.id": i, "tier": "gold"})

run(500)
tel.force_flush(60)
start = time.process_time()
run(n)
assert tel.force_flush(60)
print((time.process_time() - start) / n)
tel.shutdown()
"""


def _measure(endpoint: str, scrubbing: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, endpoint, scrubbing, str(N)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    return float(out.stdout.split()[-1]) * 1e6


def main() -> None:
    from otelkit.testing import OtlpSink

    sink = OtlpSink()
    env = installed_bytecode()
    ours: list[float] = []
    baseline: list[float] = []
    try:
        for _ in range(REPEATS):
            ours.append(_measure(sink.endpoint, "on", env))
            baseline.append(_measure(sink.endpoint, "off", env))
    finally:
        sink.close()
    print(ratio_line("scrub_cost", median(ours), median(baseline), "us/record", digits=2))


if __name__ == "__main__":
    main()
