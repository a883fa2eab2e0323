"""Tail sampling over 1,000 job traces through configure() and a real Collector (rotel)."""

from __future__ import annotations

import collections

import pytest

import otelkit
from otelkit.sampling import SamplingOptions
from otelkit.testing import OtlpSink, RotelCollector, wait_until

from .sampling_workload import LOGS_PER_TRACE, N_TRACES, SPANS_PER_TRACE, run_jobs

pytestmark = pytest.mark.collector


def test_every_failed_and_slow_trace_arrives_whole_and_the_rest_near_the_probability(
    rotel_collector: RotelCollector, otlp_sink: OtlpSink
) -> None:
    tel = otelkit.configure(
        service_name="sampling-test",
        endpoint=rotel_collector.http_endpoint,
        coalesce_window=False,  # every record of the workload is distinct evidence here
        metric_interval=3600,
        sampling=SamplingOptions(probability=0.1, duration_threshold=1.0),
    )
    ids = run_jobs()
    assert tel.shutdown(timeout=20)
    sampler = tel.sampler
    assert sampler is not None
    exported_spans = N_TRACES * SPANS_PER_TRACE - sampler.sampled_out("spans")
    exported_logs = N_TRACES * LOGS_PER_TRACE - sampler.sampled_out("logs")
    try:
        wait_until(
            lambda: (
                len(otlp_sink.spans()) >= exported_spans
                and len([r for _, r in otlp_sink.logs() if r.trace_id]) >= exported_logs
            ),
            timeout=30,
        )
    except TimeoutError:
        raise AssertionError(
            (
                len(otlp_sink.spans()),
                exported_spans,
                len(otlp_sink.logs()),
                exported_logs,
                sampler.counts(),
                tel.export_counts(),
                dict(tel.dropped()),
            )
        ) from None
    spans = [s for _, s in otlp_sink.spans()]
    by_trace: dict[int, list[object]] = collections.defaultdict(list)
    span_ids = {s.span_id for s in spans}
    for span in spans:
        by_trace[int.from_bytes(span.trace_id, "big")].append(span)
        assert not span.parent_span_id or span.parent_span_id in span_ids  # no orphan
    logs_by_trace = collections.Counter(
        int.from_bytes(r.trace_id, "big") for _, r in otlp_sink.logs() if r.trace_id
    )
    for trace_id in ids["failed"] | ids["slow"]:
        assert len(by_trace[trace_id]) == SPANS_PER_TRACE  # whole
        assert logs_by_trace[trace_id] == LOGS_PER_TRACE  # with its logs
    plain_kept = [t for t in ids["plain"] if t in by_trace]
    assert 0.05 * len(ids["plain"]) < len(plain_kept) < 0.15 * len(ids["plain"])
    for trace_id in plain_kept:
        assert len(by_trace[trace_id]) == SPANS_PER_TRACE
        assert logs_by_trace[trace_id] == LOGS_PER_TRACE
    assert set(logs_by_trace) <= set(by_trace)  # no log of a sampled-out tree arrived
    # Conservation: emitted = exported + sampled out + dropped (nothing was dropped).
    assert len(spans) + sampler.sampled_out("spans") == N_TRACES * SPANS_PER_TRACE
    assert sum(logs_by_trace.values()) + sampler.sampled_out("logs") == (N_TRACES * LOGS_PER_TRACE)
    assert dict(tel.dropped()) == {} or sum(dict(tel.dropped()).values()) == 0
    counts = sampler.counts()
    assert counts[("traces", "kept", "error")] == len(ids["failed"])
    assert counts[("traces", "kept", "slow")] == len(ids["slow"])
