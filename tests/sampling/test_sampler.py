"""Tail sampling of local trees: failed and slow trees kept whole with their logs, the rest
by trace id; sampled-out records counted apart from drops; bounded waiting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import otelkit
from otelkit.coalesce import CoalescingSpanProcessor
from otelkit.errors import InvalidOptionError
from otelkit.sampling import SamplingOptions, TailSampler
from otelkit.sampling._sampler import keeps_trace
from otelkit.testing import FakeClock

S = 1_000_000_000  # ns


@dataclass
class Rig:
    sampler: TailSampler
    tracer: trace.Tracer
    logger: Any
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter
    clock: FakeClock

    def tree(
        self, *, children: int = 2, error: bool = False, seconds: float = 0.01, logs: int = 1
    ) -> int:
        """One local tree: a root, ``children`` children (the last an error if ``error``),
        ``logs`` log records in each child; returns the trace id."""
        root = self.tracer.start_span("root", start_time=1 * S)
        ctx = trace.set_span_in_context(root)
        for i in range(children):
            child = self.tracer.start_span(f"child {i}", context=ctx, start_time=1 * S)
            token = otel_context.attach(trace.set_span_in_context(child))
            try:
                for _ in range(logs):
                    self.logger.emit(LogRecord(body=f"log of child {i}", context=None))
            finally:
                otel_context.detach(token)
            if error and i == children - 1:
                child.set_status(Status(StatusCode.ERROR, "boom"))
            child.end(end_time=1 * S + 1000)
        root.end(end_time=1 * S + int(seconds * S))
        return root.get_span_context().trace_id

    def exported_traces(self) -> set[int]:
        return {s.context.trace_id for s in self.spans.get_finished_spans() if s.context}

    def exported_log_traces(self) -> list[int]:
        return [r.log_record.trace_id or 0 for r in self.logs.get_finished_logs()]


@pytest.fixture
def rig() -> Rig:
    return make_rig(SamplingOptions(probability=0.5, duration_threshold=1.0))


def make_rig(options: SamplingOptions, coalesce: bool = False) -> Rig:
    clock = FakeClock()
    sampler = TailSampler(options, clock=clock)
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    downstream: Any = SimpleSpanProcessor(spans)
    if coalesce:
        downstream = CoalescingSpanProcessor(downstream, window=60, clock=clock)
    tp = TracerProvider()
    tp.add_span_processor(sampler.span_processor(downstream))
    lp = LoggerProvider()
    lp.add_log_record_processor(sampler.log_processor(SimpleLogRecordProcessor(logs)))
    return Rig(sampler, tp.get_tracer("t"), lp.get_logger("l"), spans, logs, clock)


def _spans_of(rig: Rig, trace_id: int) -> list[str]:
    return sorted(
        s.name
        for s in rig.spans.get_finished_spans()
        if s.context and s.context.trace_id == trace_id
    )


def _conserved(rig: Rig, emitted_spans: int, emitted_logs: int) -> None:
    assert len(rig.spans.get_finished_spans()) + rig.sampler.sampled_out("spans") == emitted_spans
    assert len(rig.logs.get_finished_logs()) + rig.sampler.sampled_out("logs") == emitted_logs
    assert rig.sampler.held == 0


def test_a_failed_tree_is_kept_whole_with_its_logs() -> None:
    rig = make_rig(SamplingOptions(probability=0.0))
    trace_id = rig.tree(error=True)
    assert _spans_of(rig, trace_id) == ["child 0", "child 1", "root"]
    assert rig.exported_log_traces() == [trace_id, trace_id]
    assert rig.sampler.counts()[("traces", "kept", "error")] == 1


def test_a_slow_tree_is_kept_whole() -> None:
    rig = make_rig(SamplingOptions(probability=0.0, duration_threshold=2.0))
    fast = rig.tree(seconds=1.9)
    slow = rig.tree(seconds=2.0)
    assert rig.exported_traces() == {slow}
    assert rig.exported_log_traces() == [slow, slow]
    assert rig.sampler.counts()[("traces", "kept", "slow")] == 1
    assert rig.sampler.counts()[("traces", "dropped", "probability")] == 1
    assert fast not in rig.exported_log_traces()
    _conserved(rig, 6, 4)


def test_the_rest_is_kept_as_the_trace_id_says_and_dropped_whole_with_its_logs(
    rig: Rig,
) -> None:
    ids = [rig.tree() for _ in range(200)]
    kept = {t for t in ids if keeps_trace(t, 0.5)}
    assert 60 < len(kept) < 140  # about half
    assert rig.exported_traces() == kept
    assert set(rig.exported_log_traces()) == kept
    for trace_id in kept:
        assert _spans_of(rig, trace_id) == ["child 0", "child 1", "root"]  # whole, no orphan
    counts = rig.sampler.counts()
    assert counts[("logs", "dropped", "probability")] == 2 * (200 - len(kept))
    _conserved(rig, 600, 400)


def test_records_without_a_trace_are_untouched(rig: Rig) -> None:
    rig.logger.emit(LogRecord(body="no trace"))
    assert [r.log_record.body for r in rig.logs.get_finished_logs()] == ["no trace"]
    assert rig.sampler.counts() == {}


def test_trees_that_wait_too_long_pass_unsampled_and_are_counted() -> None:
    rig = make_rig(SamplingOptions(probability=0.0, max_hold=5.0))
    root = rig.tracer.start_span("root", start_time=1 * S)
    ctx = trace.set_span_in_context(root)
    rig.tracer.start_span("child", context=ctx).end()
    assert rig.spans.get_finished_spans() == ()
    rig.clock.advance(5.0)
    assert [s.name for s in rig.spans.get_finished_spans()] == ["child"]
    root.end(end_time=1 * S + 1000)  # its tree was released: the root follows, not dropped
    assert [s.name for s in rig.spans.get_finished_spans()] == ["child", "root"]
    counts = rig.sampler.counts()
    assert counts[("traces", "passed", "timeout")] == 1
    assert counts[("spans", "passed", "released")] == 1


def test_waiting_is_bounded_oldest_tree_passes_first() -> None:
    rig = make_rig(SamplingOptions(probability=0.0, max_held=3))
    roots = []
    for i in range(3):
        root = rig.tracer.start_span(f"root {i}")
        roots.append(root)
        rig.tracer.start_span(f"child {i}", context=trace.set_span_in_context(root)).end()
        rig.tracer.start_span(f"child {i}b", context=trace.set_span_in_context(root)).end()
    assert rig.sampler.held <= 3
    assert {s.name for s in rig.spans.get_finished_spans()} >= {"child 0", "child 0b"}
    assert rig.sampler.counts()[("traces", "passed", "overflow")] >= 1


def test_a_child_ending_after_its_root_follows_the_verdict() -> None:
    rig = make_rig(SamplingOptions(probability=0.0))
    root = rig.tracer.start_span("root")
    late = rig.tracer.start_span("late", context=trace.set_span_in_context(root))
    root.end()  # dropped (probability 0, no error, fast)
    late.end()
    assert rig.spans.get_finished_spans() == ()
    assert rig.sampler.counts()[("spans", "dropped", "verdict")] == 1


def test_works_in_front_of_span_coalescing() -> None:
    rig = make_rig(SamplingOptions(probability=0.0), coalesce=True)
    failed = [rig.tree(error=True) for _ in range(3)]
    rig.tree()  # sampled out: never reaches the coalescer
    rig.sampler._release_all()
    exported = rig.spans.get_finished_spans()
    # The first failed tree is exported whole; its repeats are coalesced (no orphan span).
    assert _spans_of(rig, failed[0]) == ["child 0", "child 1", "root"]
    for span in exported:
        parent = span.parent
        if parent is not None and span.name != "root":
            assert any(s.context and s.context.span_id == parent.span_id for s in exported)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (SamplingOptions(probability=1.5), r"probability=1.5 must be within \[0, 1\]"),
        (SamplingOptions(probability=-0.1), "must be within"),
        (SamplingOptions(duration_threshold=0), "duration_threshold must be greater than 0"),
        (SamplingOptions(duration_threshold=-1), "duration_threshold must be greater than 0"),
        (SamplingOptions(max_hold=0), "max_hold"),
    ],
)
def test_bad_sampling_options_fail_configure(options: SamplingOptions, words: str) -> None:
    with pytest.raises(InvalidOptionError, match=words):
        otelkit.configure(service_name="s", exporter="memory", sampling=options)


def test_configure_samples_and_reports_through_the_handle() -> None:
    tel = otelkit.configure(
        service_name="s",
        exporter="memory",
        coalesce_window=False,
        sampling=SamplingOptions(probability=0.0),
    )
    try:
        tracer = trace.get_tracer("t")
        with tracer.start_as_current_span("ok"):
            pass
        with pytest.raises(RuntimeError, match="x"), tracer.start_as_current_span("bad"):
            raise RuntimeError("x")
        tel.force_flush()
        assert tel.memory is not None
        assert [s.name for s in tel.memory.spans.get_finished_spans()] == ["bad"]
        assert tel.sampler is not None
        assert tel.sampler.counts()[("traces", "kept", "error")] == 1
        assert tel.sampler.counts()[("traces", "dropped", "probability")] == 1
        data = tel.memory.metrics.get_metrics_data()
        points = {
            tuple(sorted((point.attributes or {}).items())): point.value
            for rm in (data.resource_metrics if data else [])
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == "otelkit.sampling.decisions"
            for point in metric.data.data_points
        }
        key = (("decision", "dropped"), ("reason", "probability"), ("signal", "spans"))
        assert points[key] == 1
    finally:
        tel.shutdown()


def test_the_host_decides_the_trees_its_relay_children_send() -> None:
    import multiprocessing

    from otelkit.testing import wait_until

    from . import children

    host = otelkit.configure(
        service_name="sampling-host",
        relay=True,
        exporter="memory",
        coalesce_window=False,
        sampling=SamplingOptions(probability=0.0),
    )
    try:
        process = multiprocessing.get_context("spawn").Process(target=children.jobs_child)
        process.start()
        process.join(60)
        assert process.exitcode == 0
        assert host.sampler is not None and host.memory is not None
        wait_until(
            lambda: host.sampler.counts().get(("traces", "dropped", "probability")) == 8, timeout=20
        )  # type: ignore[union-attr]
        host.force_flush()
        names = sorted(s.name for s in host.memory.spans.get_finished_spans())
        assert names == ["job 2", "job 6", "step 2", "step 6"]
        bodies = sorted(str(r.log_record.body) for r in host.memory.logs.get_finished_logs())
        assert [b for b in bodies if "step" in b] == ["job 2 step", "job 6 step"]
        assert host.sampler.sampled_out("logs") == 8
    finally:
        host.shutdown()
