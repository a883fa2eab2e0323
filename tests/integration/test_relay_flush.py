"""``flush()`` in a relay child means flushed: everything recorded before the call, in all
three signals, is written to the relay when it returns True.

The child flushes and then dies of SIGKILL, so no exit path can deliver anything later:
what reaches the sink is what the flush wrote.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from otelkit.testing import OtlpSink

pytestmark = [pytest.mark.collector]

HOST = textwrap.dedent(
    """
    import logging, multiprocessing, os, signal, sys, time
    import otelkit
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import Observation

    def slow_gauge(options):
        time.sleep(0.3)  # a callback that takes its time (a query): the collection is slow
        return [Observation(1, {"flush.slow": True})]

    def child(points):
        otelkit.configure(service_name="flush-child", metric_interval=3600)
        meter = metrics.get_meter("flush")
        counter = meter.create_counter("flush.points")
        for i in range(points):
            counter.add(1, {"flush.point": i})
        meter.create_observable_gauge("flush.slow", callbacks=[slow_gauge])
        with trace.get_tracer("flush").start_as_current_span("flush.span"):
            logging.getLogger("flush").warning("flush record")
        ok = otelkit.flush(timeout=20)
        print("flushed", ok, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    if __name__ == "__main__":
        otelkit.configure(
            service_name="flush-host", endpoint=sys.argv[1], relay=True, metric_interval=3600,
            coalesce_window=False,
        )
        proc = multiprocessing.get_context("spawn").Process(target=child, args=(1000,))
        proc.start()
        proc.join(60)
        print("exitcode", proc.exitcode, flush=True)
        print("shutdown", otelkit.current().shutdown(timeout=20), flush=True)
    """
)


def test_flush_in_a_relay_child_writes_every_metric_point_before_it_returns(
    otlp_sink: OtlpSink, tmp_path
) -> None:
    program = tmp_path / "host.py"
    program.write_text(HOST)
    done = subprocess.run(
        [sys.executable, str(program), otlp_sink.endpoint],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "flushed True" in done.stdout, done.stdout + done.stderr[-4000:]
    assert "exitcode -9" in done.stdout  # nothing after the flush could deliver anything
    points = otlp_sink.metric_points("flush.points")
    assert len({attrs["flush.point"] for _, attrs, _ in points}) == 1000
    assert len(otlp_sink.metric_points("flush.slow")) == 1
    assert [s.name for _, s in otlp_sink.spans()] == ["flush.span"]
    assert [r.body.string_value for _, r in otlp_sink.logs()] == ["flush record"]
