"""relay_startup: ``otelkit.configure()`` in a relay child vs importing the OTel SDK alone.

Each figure is measured inside a fresh process, from before the first import to after the
call; the child finds a running relay host through ``OTELKIT_RELAY``. The child also reports
whether grpc or requests got imported (they must not). Target: at most 30 ms more.

    .venv/bin/python benchmarks/relay_startup.py [repeats]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import ignoring_processors, installed_bytecode, median, ratio_line

# One process measures both: the SDK imports alone (the baseline), then what configure()
# adds on top; machine load then hits both figures alike.
CONFIGURE = """
import json, sys, time; t0 = time.perf_counter()
import opentelemetry.sdk.trace, opentelemetry.sdk._logs, opentelemetry.sdk.metrics
t1 = time.perf_counter()
import otelkit
tel = otelkit.configure(service_name="bench-child")
t2 = time.perf_counter()
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("grpc", "requests"))
print(json.dumps({"sdk": t1 - t0, "configure": t2 - t0, "imported": bad}))
tel.shutdown()
"""

PIPELINE = """
import json, os, sys, time; t0 = time.perf_counter()
import opentelemetry.sdk.trace, opentelemetry.sdk._logs, opentelemetry.sdk.metrics
t1 = time.perf_counter()
import logging
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from otelkit.relay import RELAY_ENV, ChildPipeline
resource = Resource.create({"service.name": "bench-child"})
child = ChildPipeline.from_env(os.environ[RELAY_ENV], resource=resource)
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(child.span_processor)
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(child.log_processor)
logging.getLogger().addHandler(child.logging_handler())
t2 = time.perf_counter()
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("grpc", "requests"))
print(json.dumps({"sdk": t1 - t0, "configure": t2 - t0, "imported": bad}))
"""


def _measure(code: str, env: dict[str, str]) -> tuple[float, float]:
    """``(ours, baseline)`` in ms from one fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["imported"]:
        raise SystemExit(f"a relay child imported {result['imported']}")
    return float(result["configure"]) * 1000, float(result["sdk"]) * 1000


def main(repeats: int = 9) -> None:
    from otelkit.relay import RelayHost

    ignore_spans, ignore_logs = ignoring_processors()
    host = RelayHost(span_processor=ignore_spans, log_processor=ignore_logs)
    host.start()
    env = {**installed_bytecode(), "OTELKIT_RELAY": host.env_value}
    try:
        configure = [_measure(CONFIGURE, env) for _ in range(repeats)]
        pipeline = [_measure(PIPELINE, env) for _ in range(repeats)]
    finally:
        host.close(5)
    ours, base = median([c[0] for c in configure]), median([c[1] for c in configure])
    added = median([c[0] - c[1] for c in configure])
    hand_built = median([p[0] - p[1] for p in pipeline])
    print("grpc and requests: never imported by a relay child")
    print(f"a hand-built child pipeline (relay only) adds {hand_built:.1f} ms to the SDK imports")
    print(f"configure() in a relay child adds {added:.1f} ms to the SDK imports (target <= 30)")
    print(ratio_line("relay_startup", ours, base, "ms", digits=1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
