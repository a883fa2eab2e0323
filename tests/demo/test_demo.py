"""`otelkit demo` end to end: against a real Collector, and drawn in the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from otelkit._demo import DemoOptions
from otelkit._testsupport import free_port
from otelkit.testing import OtlpSink, RotelCollector, proto_attributes, wait_until


def _run_demo(*args: str, marker: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OTELKIT_DEMO_TEST_MARKER": marker}
    env.pop("OTELKIT_RELAY", None)
    return subprocess.run(
        [sys.executable, "-m", "otelkit", "demo", "--duration", "20", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"OTELKIT_DEMO_TEST_MARKER={marker}".encode() in environ:
            found.append(int(entry.name))
    return found


@pytest.mark.collector
def test_demo_exports_through_a_real_collector(
    rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    marker = uuid.uuid4().hex
    result = _run_demo("--endpoint", rotel_collector.http_endpoint, marker=marker)
    assert result.returncode == 0, result.stderr
    assert "jobs by final state" in result.stdout
    assert "http://localhost:16686/trace/" in result.stdout
    assert _processes_with(marker) == []  # nothing left running

    wait_until(lambda: len(otlp_sink.spans()) > 40 and otlp_sink.metric_names(), timeout=20)
    spans = otlp_sink.spans()
    by_trace: dict[bytes, set[str]] = {}
    for resource, span in spans:
        by_trace.setdefault(span.trace_id, set()).add(resource["service.name"])
    assert any(
        {"otelkit-demo", "otelkit-demo-worker"} <= services for services in by_trace.values()
    )

    def attempts_of(job_name: str) -> list:
        send = next(
            s
            for _, s in spans
            if s.name == "send demo"
            and proto_attributes(s.attributes).get("otelkit.job.name") == job_name
        )
        return [
            s
            for _, s in spans
            if s.name == "process demo" and any(link.span_id == send.span_id for link in s.links)
        ]

    retried = attempts_of("demo.flaky")
    assert len(retried) == 2
    assert sorted(s.status.code for s in retried) == [0, 2]  # unset (ok) and error
    assert len(attempts_of("demo.doomed")) == 3

    summaries = [
        rec
        for _, rec in otlp_sink.logs()
        if (proto_attributes(rec.attributes).get("otelkit.coalesce.count") or 0) > 1
    ]
    assert summaries, "no coalescing summary record was exported"
    assert any(name.startswith("otelkit.preload.") for name in otlp_sink.metric_names())
    assert "otelkit.cache.requests" in otlp_sink.metric_names()

    # The jobs ran in the worker processes: their job metrics are relayed, under each
    # worker's own identity, and they add up to every attempt the demo made.
    wait_until(lambda: otlp_sink.metric_points("messaging.process.duration"), timeout=20)
    durations = otlp_sink.metric_points("messaging.process.duration")
    worker_pids = {res["process.pid"] for res, _, _ in durations}
    assert {res["service.name"] for res, _, _ in durations} == {"otelkit-demo-worker"}
    assert len(worker_pids) == 2
    last_count: dict[tuple[object, ...], int] = {}
    for res, attrs, count in durations:  # cumulative: the last point of each series counts
        last_count[(res["service.instance.id"], *sorted(attrs.items()))] = count
    assert sum(last_count.values()) == 40 + 2 + 3  # 40 orders, flaky twice, doomed 3 times
    transitions = otlp_sink.metric_points("otelkit.job.transitions")
    assert {res["process.pid"] for res, _, _ in transitions} >= worker_pids
    assert "relay" in result.stdout and "metric points from workers" in result.stdout


def test_demo_draws_its_traces_in_the_terminal_without_a_collector() -> None:
    marker = uuid.uuid4().hex
    result = _run_demo("--workers", "1", "--endpoint", "none", marker=marker)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "jobs by final state  failed 1, succeeded 41" in out
    assert "relay" in out and "0 dropped" in out
    assert "the retried job (flaky):" in out
    assert "process demo [consumer]" in out
    assert "ERROR: ConnectionError: inventory service reset the connection" in out
    assert "inventory synced on attempt 2" in out
    assert 'scrubbed             "ValueError: card [scrubbed: credit card] declined"' in out
    assert "4000-0000-0000-0002" not in out
    assert "tail sampling" not in out  # off unless asked for
    assert _processes_with(marker) == []


def test_demo_with_sampling_says_how_many_job_traces_were_kept_and_why() -> None:
    import re

    marker = uuid.uuid4().hex
    result = _run_demo("--workers", "1", "--endpoint", "none", "--sampling", "0.1", marker=marker)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("tail sampling"))
    found = re.search(
        r"kept (\d+) of 45 job traces: (\d+) failed, 0 slow, (\d+) by trace id "
        r"\(probability 0.1\); (\d+) sampled out",
        line,
    )
    assert found, line
    kept, failed, by_id, out = map(int, found.groups())
    assert failed == 4  # the doomed job's 3 attempts and the flaky job's first
    assert kept == failed + by_id and kept + out == 45
    assert "the failed job (doomed):" in result.stdout  # failed trees are always kept
    assert _processes_with(marker) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration": 0.1}, "--duration must be within 1 and 600 seconds"),
        ({"workers": 0}, "--workers must be within 1 and 16"),
        ({"endpoint": "http://:1"}, "is not a valid endpoint"),
        ({"sampling": 1.5}, r"probability=1.5 must be within \[0, 1\]"),
    ],
)
def test_demo_rejects_bad_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemoOptions(**kwargs)  # type: ignore[arg-type]


def test_demo_with_nothing_listening_says_so_and_links_nothing() -> None:
    marker = uuid.uuid4().hex
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = _run_demo("--workers", "1", "--endpoint", endpoint, marker=marker)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "http://localhost:16686/trace/" not in out  # no links to traces never exported
    assert f"Nothing was exported: no Collector accepted the telemetry sent to {endpoint}" in out
    assert "none exported" in out and "coalescing 0:1" not in out
    assert "the retried job (flaky):" in out and "process demo [consumer]" in out  # drawn
    assert "Transient error" not in result.stderr and "retrying in" not in result.stderr
    assert all(line.startswith("otelkit") for line in result.stderr.splitlines()), result.stderr
    assert _processes_with(marker) == []


def test_the_summary_counts_job_traces_by_decision() -> None:
    from otelkit._demo._report import DemoSummary, summary_table

    summary = DemoSummary(
        sampling=0.1, job_decisions={("kept", "error"): 4, ("dropped", "probability"): 30}
    )
    assert (
        "kept 4 of 34 job traces: 4 failed, 0 slow, 0 by trace id (probability 0.1); 30 sampled out"
        in summary_table(summary)
    )


def test_the_summary_gives_no_ratio_when_nothing_was_exported() -> None:
    from otelkit._demo._report import DemoSummary, summary_table

    table = summary_table(DemoSummary(logs_emitted=3488, logs_exported=0, logs_failed=51))
    assert "3488 emitted -> none exported, 51 failed to export" in table
    assert "coalescing" not in table
