"""startup: cost of ``import otelkit; otelkit.configure()`` (OTLP/HTTP) in a fresh process
vs importing the OTel SDK alone (trace, logs and metrics packages), measured inside the
process from before the first import to after the call.

Run: .venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import installed_bytecode, median, ratio_line

OURS = """
import time; t = time.perf_counter()
import otelkit
tel = otelkit.configure(service_name="bench", endpoint=__import__("sys").argv[1])
print(time.perf_counter() - t)
tel.shutdown()
"""

BASELINE = """
import time; t = time.perf_counter()
import opentelemetry.sdk.trace, opentelemetry.sdk._logs, opentelemetry.sdk.metrics
print(time.perf_counter() - t)
"""


def _measure(code: str, endpoint: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code, endpoint],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    return float(out.stdout.split()[0]) * 1000


def main(repeats: int = 9) -> None:
    from otelkit.testing import OtlpSink

    sink = OtlpSink()
    env = installed_bytecode()
    try:
        ours = [_measure(OURS, sink.endpoint, env) for _ in range(repeats)]
        base = [_measure(BASELINE, sink.endpoint, env) for _ in range(repeats)]
    finally:
        sink.close()
    print(f"configure() adds {median(ours) - median(base):.0f} ms over importing the SDK")
    print(ratio_line("startup", median(ours), median(base), "ms", digits=1))


if __name__ == "__main__":
    main()
