"""CoalescingSpanProcessor: whole local trees are exported or dropped, never orphans."""

from __future__ import annotations

import os
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from otelkit._errors import internal_error_counts
from otelkit.coalesce import COUNT_ATTRIBUTE, CoalescingSpanProcessor
from otelkit.testing import FakeClock

from .conftest import SpanPipeline


def assert_no_orphans(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> None:
    """Every exported span with a local parent has that parent exported too."""
    exported = {s.context.span_id for s in spans if s.context is not None}
    for span in spans:
        if span.parent is not None and not span.parent.is_remote:
            assert span.parent.span_id in exported, f"orphan exported: {span.name}"


def tree(pipeline: SpanPipeline, root: str = "GET /items", children: int = 2) -> None:
    """A request: ``children`` child spans (each with a grandchild) end before the root."""
    tracer = pipeline.provider.get_tracer("tests")
    with tracer.start_as_current_span(root):
        for i in range(children):
            with (
                tracer.start_as_current_span(f"child-{i}"),
                tracer.start_as_current_span(f"grandchild-{i}"),
            ):
                pass


def test_a_repeated_tree_is_exported_once_then_summarised(span_pipeline: SpanPipeline) -> None:
    for _ in range(5):
        tree(span_pipeline)
    assert sorted(span_pipeline.names()) == sorted(
        ["GET /items", "child-0", "child-1", "grandchild-0", "grandchild-1"]
    )
    first_root = next(s for s in span_pipeline.spans() if s.name == "GET /items")
    span_pipeline.clock.advance(10)
    (summary,) = span_pipeline.summaries()
    assert summary.name == "GET /items"
    assert summary.attributes is not None
    assert summary.attributes[COUNT_ATTRIBUTE] == 5
    assert summary.parent is None
    assert summary.resource == first_root.resource
    assert [link.context for link in summary.links] == [first_root.context]
    assert summary.context is not None and first_root.context is not None
    assert summary.context.trace_id != first_root.context.trace_id
    assert_no_orphans(span_pipeline.spans())
    assert span_pipeline.metric("otelkit.coalesce.suppressed") == 4 * 5  # whole trees


def test_different_roots_are_different_keys(span_pipeline: SpanPipeline) -> None:
    tree(span_pipeline, "GET /a", children=0)
    tree(span_pipeline, "GET /b", children=0)
    tracer = span_pipeline.provider.get_tracer("tests")
    with tracer.start_as_current_span("GET /a") as failing:
        failing.set_status(Status(StatusCode.ERROR))
    assert span_pipeline.names() == ["GET /a", "GET /b", "GET /a"]


def test_a_suppressed_trees_late_children_are_dropped_too(span_pipeline: SpanPipeline) -> None:
    tracer = span_pipeline.provider.get_tracer("tests")
    tree(span_pipeline, children=0)
    root = tracer.start_span("GET /items")
    child = tracer.start_span("fire-and-forget", context=trace.set_span_in_context(root))
    grandchild = tracer.start_span("inner", context=trace.set_span_in_context(child))
    grandchild.end()  # held: its parent has not ended
    root.end()  # suppressed (a repeat)
    child.end()  # ends after its root: follows the root's verdict, with its held child
    span_pipeline.clock.advance(60)
    assert span_pipeline.names() == ["GET /items", "GET /items"]  # first + summary
    assert span_pipeline.processor.held_spans == 0


def test_an_exported_trees_late_children_pass_at_once(span_pipeline: SpanPipeline) -> None:
    tracer = span_pipeline.provider.get_tracer("tests")
    root = tracer.start_span("GET /items")
    early = tracer.start_span("early", context=trace.set_span_in_context(root))
    late = tracer.start_span("late", context=trace.set_span_in_context(root))
    early.end()
    root.end()
    late.end()
    assert span_pipeline.names() == ["early", "GET /items", "late"]
    assert_no_orphans(span_pipeline.spans())


def test_trees_waiting_too_long_for_their_root_pass_through(
    fake_clock: FakeClock, span_pipeline: SpanPipeline
) -> None:
    tracer = span_pipeline.provider.get_tracer("tests")
    tree(span_pipeline, children=0)  # the key has been seen: the next root would be dropped
    root = tracer.start_span("GET /items")
    child = tracer.start_span("slow step", context=trace.set_span_in_context(root))
    child.end()
    fake_clock.advance(29)
    assert span_pipeline.names() == ["GET /items"]
    fake_clock.advance(1)  # max_hold (30 s): the child leaves without its root
    assert span_pipeline.names() == ["GET /items", "slow step"]
    fake_clock.advance(300)  # however long the root takes
    root.end()  # a repeat, but its child is out: the root must follow
    assert span_pipeline.names() == ["GET /items", "slow step", "GET /items"]
    assert_no_orphans(span_pipeline.spans())
    assert span_pipeline.metric("otelkit.coalesce.overflow") == 1


@pytest.mark.parametrize("span_options", [{"max_held_spans": 3}])
def test_beyond_max_held_spans_trees_pass_uncoalesced(span_pipeline: SpanPipeline) -> None:
    tree(span_pipeline, children=0)
    tree(span_pipeline, children=3)  # 6 descendants, room for 3: the tree is forced through
    assert span_pipeline.processor.held_spans == 0
    assert span_pipeline.names().count("GET /items") == 2
    assert len(span_pipeline.spans()) == 8
    assert_no_orphans(span_pipeline.spans())
    span_pipeline.processor.force_flush()
    assert span_pipeline.metric("otelkit.coalesce.overflow") >= 1


@pytest.mark.parametrize(
    "span_options", [{"predicate": lambda span: span.name.startswith("health")}]
)
def test_only_trees_matching_the_predicate_are_coalesced(span_pipeline: SpanPipeline) -> None:
    for _ in range(3):
        tree(span_pipeline, "GET /items", children=0)
        tree(span_pipeline, "health check", children=1)
    assert span_pipeline.names().count("GET /items") == 3
    assert span_pipeline.names().count("health check") == 1
    assert span_pipeline.names().count("child-0") == 1


def test_a_span_with_a_remote_parent_is_a_local_root(span_pipeline: SpanPipeline) -> None:
    tracer = span_pipeline.provider.get_tracer("tests")
    remote = SpanContext(
        trace_id=0xABC, span_id=0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    for _ in range(3):
        context = trace.set_span_in_context(NonRecordingSpan(remote))
        with (
            tracer.start_as_current_span("consume", context=context),
            tracer.start_as_current_span("handle"),
        ):
            pass
    assert span_pipeline.names() == ["handle", "consume"]
    span_pipeline.clock.advance(10)
    assert span_pipeline.summaries()[0].attributes[COUNT_ATTRIBUTE] == 3  # type: ignore[index]


def relayed(
    name: str, trace_id: int, span_id: int, parent: SpanContext | None, resource: Resource
) -> ReadableSpan:
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, False, TraceFlags(TraceFlags.SAMPLED)),
        parent=parent,
        resource=resource,
        start_time=1,
        end_time=2,
    )


def test_relayed_trees_from_a_child_process_coalesce_under_the_childs_identity(
    span_pipeline: SpanPipeline,
) -> None:
    processor = span_pipeline.processor
    host_span = SpanContext(0x1, 0x10, True, TraceFlags(TraceFlags.SAMPLED))
    for n in range(3):
        child_resource = Resource.create({"service.name": "host", "process.pid": 777})
        root_ctx = SpanContext(0x1, 0x100 + n, False, TraceFlags(TraceFlags.SAMPLED))
        processor.on_end(relayed("plugin.step", 0x1, 0x200 + n, root_ctx, child_resource))
        processor.on_end(relayed("plugin.run", 0x1, 0x100 + n, host_span, child_resource))
    tree(span_pipeline, "plugin.run", children=0)  # the host's own: another resource, another key
    span_pipeline.clock.advance(10)
    assert span_pipeline.names() == ["plugin.step", "plugin.run", "plugin.run", "plugin.run"]
    (summary,) = span_pipeline.summaries()
    assert summary.resource.attributes["process.pid"] == 777
    assert summary.attributes[COUNT_ATTRIBUTE] == 3  # type: ignore[index]


def test_per_resource_false_merges_trees_from_different_processes(
    fake_clock: FakeClock,
) -> None:
    recorder = Recorder()
    processor = CoalescingSpanProcessor(recorder, clock=fake_clock, per_resource=False)
    for n, pid in enumerate((21, 22, 23)):
        resource = Resource.create({"process.pid": pid})
        processor.on_end(relayed("plugin.run", 0x5 + n, 0x50 + n, None, resource))
    fake_clock.advance(10)
    assert [call for call in recorder.calls if call[0] == "on_end"] == [
        ("on_end", "plugin.run"),
        ("on_end", "plugin.run"),  # the summary
    ]
    assert processor._engine.suppressed == 2


class FailingDownstream(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("downstream is broken")


def test_a_failing_downstream_is_contained_and_counted(fake_clock: FakeClock) -> None:
    processor = CoalescingSpanProcessor(FailingDownstream(), clock=fake_clock)
    before = internal_error_counts().get("coalesce.traces.downstream", 0)
    span = relayed("x", 1, 2, None, Resource.get_empty())
    processor.on_end(span)  # must not raise
    processor.on_end(span)
    fake_clock.advance(10)  # summary fails on the timer: contained
    assert internal_error_counts()["coalesce.traces.downstream"] == before + 1
    assert processor._engine.consumer_errors == 1


class Recorder(SpanProcessor):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.calls.append(("on_end", span.name))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.calls.append(("force_flush", timeout_millis))
        return True

    def shutdown(self) -> None:
        self.calls.append(("shutdown", None))


def test_force_flush_releases_held_spans_and_summaries_then_flushes_downstream(
    fake_clock: FakeClock,
) -> None:
    recorder = Recorder()
    processor = CoalescingSpanProcessor(recorder, clock=fake_clock)
    root = SpanContext(5, 50, False, TraceFlags(TraceFlags.SAMPLED))
    processor.on_end(relayed("r", 9, 90, None, Resource.get_empty()))
    processor.on_end(relayed("r", 9, 91, None, Resource.get_empty()))
    processor.on_end(relayed("held child", 5, 51, root, Resource.get_empty()))
    assert processor.force_flush(2000) is True
    names = [(name, arg) for name, arg in recorder.calls if name == "on_end"]
    assert names == [("on_end", "r"), ("on_end", "held child"), ("on_end", "r")]
    assert recorder.calls[-1][0] == "force_flush"
    assert 0 <= recorder.calls[-1][1] <= 2000
    processor.on_end(relayed("r", 5, 50, None, Resource.get_empty()))  # its root: must follow
    assert recorder.calls[-1] == ("on_end", "r")


def test_shutdown_releases_everything_then_shuts_downstream(fake_clock: FakeClock) -> None:
    recorder = Recorder()
    processor = CoalescingSpanProcessor(recorder, clock=fake_clock)
    root = SpanContext(5, 50, False, TraceFlags(TraceFlags.SAMPLED))
    processor.on_end(relayed("held child", 5, 51, root, Resource.get_empty()))
    processor.shutdown()
    assert recorder.calls == [("on_end", "held child"), ("shutdown", None)]
    assert fake_clock.pending_timers() == 0


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"window": 0}, ValueError, "window"),
        ({"max_hold": -1}, ValueError, "max_hold"),
        ({"max_held_spans": 0}, ValueError, "max_held_spans"),
        ({"max_keys": "many"}, TypeError, "max_keys"),
        ({"predicate": 3}, TypeError, "predicate"),
        ({"key": "message"}, ValueError, "'name'"),
    ],
)
def test_bad_options_name_the_option(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        CoalescingSpanProcessor(Recorder(), **options)  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() in a threaded process
def test_a_forked_child_holds_nothing_of_its_parent(fake_clock: FakeClock) -> None:
    recorder = Recorder()
    processor = CoalescingSpanProcessor(recorder, clock=fake_clock)
    root = SpanContext(5, 50, False, TraceFlags(TraceFlags.SAMPLED))
    processor.on_end(relayed("held child", 5, 51, root, Resource.get_empty()))
    pid = os.fork()
    if pid == 0:  # child: the parent exports what it holds; the child must not
        code = 1
        try:
            processor.force_flush()
            exported = [name for name, _ in recorder.calls if name == "on_end"]
            code = 0 if processor.held_spans == 0 and exported == [] else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert processor.held_spans == 1


def test_failed_roots_merge_only_with_the_same_exception_type(
    span_pipeline: SpanPipeline,
) -> None:
    tracer = span_pipeline.provider.get_tracer("tests")
    for error in (KeyError, ValueError, KeyError):
        with pytest.raises(error), tracer.start_as_current_span("job"):
            raise error("failed")
    assert span_pipeline.names() == ["job", "job"]  # KeyError, ValueError; the repeat merged
    span_pipeline.clock.advance(10)
    (summary,) = span_pipeline.summaries()
    assert summary.attributes[COUNT_ATTRIBUTE] == 2  # type: ignore[index]


@pytest.mark.parametrize("span_options", [{"max_keys": 1}])
def test_with_max_keys_open_new_roots_pass_and_repeats_still_merge(
    span_pipeline: SpanPipeline,
) -> None:
    tracer = span_pipeline.provider.get_tracer("tests")
    for name in ("GET /a", "GET /b", "GET /a", "GET /a"):
        with tracer.start_as_current_span(name):
            pass
    with tracer.start_as_current_span("GET /a") as span:  # same name, another status
        span.set_status(Status(StatusCode.ERROR))
    assert span_pipeline.names() == ["GET /a", "GET /b", "GET /a"]
    span_pipeline.clock.advance(10)
    [summary] = span_pipeline.summaries()
    assert summary.attributes is not None
    assert summary.attributes[COUNT_ATTRIBUTE] == 3
    assert span_pipeline.metric("otelkit.coalesce.overflow") == 2


class HookRecorder(Recorder):
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.calls.append(("on_start", span.name))

    def _on_ending(self, span: Any) -> None:  # the SDK's private hook before a span ends
        self.calls.append(("_on_ending", span.name))


def test_the_downstreams_hooks_before_the_end_are_forwarded(fake_clock: FakeClock) -> None:
    downstream = HookRecorder()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(CoalescingSpanProcessor(downstream, clock=fake_clock))
    with provider.get_tracer("tests").start_as_current_span("x"):
        pass
    assert downstream.calls == [("on_start", "x"), ("_on_ending", "x"), ("on_end", "x")]
    provider.shutdown()


class FailingStart(Recorder):
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        raise RuntimeError("on_start is broken")


def test_a_downstream_with_its_own_on_start_is_wrapped_and_contained(
    fake_clock: FakeClock,
) -> None:
    processor = CoalescingSpanProcessor(FailingStart(), clock=fake_clock)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    before = internal_error_counts().get("coalesce.traces.downstream", 0)
    with provider.get_tracer("tests").start_as_current_span("x"):
        pass  # must not raise
    assert internal_error_counts()["coalesce.traces.downstream"] == before + 1
    provider.shutdown()


def test_a_batch_span_processor_gets_sampled_spans_queued_as_its_on_end_would(
    fake_clock: FakeClock,
) -> None:
    # Sampled spans must arrive, recorded but unsampled ones must not.
    exporter = InMemorySpanExporter()
    processor = CoalescingSpanProcessor(BatchSpanProcessor(exporter), clock=fake_clock)
    provider = TracerProvider(shutdown_on_exit=False, sampler=RecordOnlyForSome())
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("sampled"):
        pass
    with tracer.start_as_current_span("not sampled") as span:  # recorded, not sampled
        assert span.is_recording() and not span.get_span_context().trace_flags.sampled
    processor.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["sampled"]
    provider.shutdown()


class RecordOnlyForSome(Sampler):
    def should_sample(
        self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any
    ) -> SamplingResult:
        return SamplingResult(
            Decision.RECORD_ONLY if name == "not sampled" else Decision.RECORD_AND_SAMPLE
        )

    def get_description(self) -> str:
        return "record only spans named 'not sampled'"
