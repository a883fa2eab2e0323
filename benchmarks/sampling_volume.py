"""sampling_volume: bytes on the wire for 1,000 job traces with tail sampling vs without.

The workload of ``tests/integration/sampling_workload.py``: 1,000 job traces (a CONSUMER
root, two children, two log records each), 5 % failed and 5 % slow. Each side is a fresh
process calling ``otelkit.configure()`` (OTLP/HTTP, gzip, to a receiver in this process;
coalescing off, so that only sampling differs); ours with
``sampling=SamplingOptions(probability=0.1)``. The receiver counts the request bytes
(traces, logs, and the one metrics export at shutdown, the same on both sides). Expected: about 0.2 (every failed and slow trace, a tenth of the rest);
the run checks that the kept failed and slow trees are exactly the workload's.

    .venv/bin/python benchmarks/sampling_volume.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import installed_bytecode, ratio_line

WORKLOAD = Path(__file__).resolve().parents[1] / "tests" / "integration"

CHILD = """
import json, sys
sys.path.insert(0, sys.argv[3])
import otelkit
from otelkit.sampling import SamplingOptions
from sampling_workload import run_jobs

sampling = SamplingOptions(probability=0.1) if sys.argv[2] == "on" else None
tel = otelkit.configure(
    service_name="bench", endpoint=sys.argv[1], coalesce_window=False, metric_interval=3600,
    sampling=sampling,
)
ids = run_jobs()
assert tel.shutdown(timeout=30)
counts = tel.sampler.counts() if tel.sampler else {}
print(json.dumps({
    "failed": len(ids["failed"]), "slow": len(ids["slow"]),
    "kept_failed": counts.get(("traces", "kept", "error"), 0),
    "kept_slow": counts.get(("traces", "kept", "slow"), 0),
    "kept_other": counts.get(("traces", "kept", "probability"), 0),
}))
"""


def _run(sampling: str, env: dict[str, str]) -> tuple[int, dict[str, int]]:
    from otelkit.testing import OtlpSink

    sink = OtlpSink()
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, sink.endpoint, sampling, str(WORKLOAD)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        return sink.bytes_received, json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        sink.close()


def main() -> None:
    env = installed_bytecode()
    ours, report = _run("on", env)
    baseline, _ = _run("off", env)
    if (report["kept_failed"], report["kept_slow"]) != (report["failed"], report["slow"]):
        raise SystemExit(f"kept failed/slow trees differ from the workload's: {report}")
    print(
        f"kept: {report['kept_failed']} failed and {report['kept_slow']} slow of "
        f"{report['failed']} and {report['slow']}; {report['kept_other']} of the other "
        f"{1000 - report['failed'] - report['slow']}"
    )
    print(ratio_line("sampling_volume", ours / 1024, baseline / 1024, "KiB", digits=2))


if __name__ == "__main__":
    main()
