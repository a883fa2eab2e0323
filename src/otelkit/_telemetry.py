"""The :class:`Telemetry` handle: the providers of one pipeline, its relay role (host, or
child after a fork), its flush and its bounded shutdown. ``configure()`` builds it
(:mod:`otelkit._configure`); the process hooks flush it at exit
(:mod:`otelkit._process_hooks`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider, sampling

from otelkit import _active, _sigterm
from otelkit._clock import REAL_CLOCK
from otelkit._config import Settings
from otelkit._drops import DropLedger
from otelkit._logbridge import OtelLogHandler
from otelkit._pipeline import (
    DiscardMetrics,
    Pipeline,
    SwitchLogProcessor,
    SwitchSpanProcessor,
    scrubbing_processors,
    wrap_sampling,
)
from otelkit._process_hooks import install_sigterm
from otelkit._sdk.context import instrumentation_enabled
from otelkit._threads import start_daemon
from otelkit._unreachable import refusing, say

if TYPE_CHECKING:
    from otelkit._batch import BatchCore
    from otelkit._exporters import MemoryExporters
    from otelkit.relay import ChildPipeline, RelayHost
    from otelkit.sampling import TailSampler
    from otelkit.scrubbing._scrubber import Scrubber

__all__ = ["Telemetry", "resource_for"]


def _sampler(settings: Settings) -> sampling.Sampler:
    name, ratio = settings.sampler, settings.sample_ratio
    root: sampling.Sampler
    if name.endswith("always_on"):
        root = sampling.ALWAYS_ON
    elif name.endswith("always_off"):
        root = sampling.ALWAYS_OFF
    else:
        root = sampling.TraceIdRatioBased(ratio)
    return sampling.ParentBased(root) if name.startswith("parentbased_") else root


def resource_for(settings: Settings) -> Resource:
    attrs: dict[str, Any] = dict(settings.resource_attributes)
    attrs["service.name"] = settings.service_name
    if settings.service_version:
        attrs["service.version"] = settings.service_version
    if settings.environment:
        attrs["deployment.environment.name"] = settings.environment
    attrs["process.pid"] = os.getpid()
    resource = Resource.create(attrs)
    if settings.scrubbing is not None:
        from otelkit._pipeline import scrubbed_resource

        resource = scrubbed_resource(resource, settings.scrubbing)
    return resource


class _SkipSuppressed(logging.Filter):
    """Drops records logged while instrumentation is suppressed (inside an export):
    an exporter's own "export failed" warning must not feed the pipeline that failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return instrumentation_enabled(otel_context.get_current())


def _run_bounded(tasks: list[Callable[[], object]], timeout: float) -> bool:
    """Run ``tasks`` in parallel daemon threads; True when all finished within ``timeout``
    and none returned ``False`` (a flush that failed)."""
    failed: list[bool] = []

    def run(task: Callable[[], object]) -> None:
        if task() is False:
            failed.append(True)

    threads = [start_daemon(run, args=(task,), name="otelkit-flush") for task in tasks]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not failed and not any(thread.is_alive() for thread in threads)


class Telemetry:
    """The installed OpenTelemetry pipeline: providers, flush and bounded shutdown.

    Returned by :func:`otelkit.configure`. Also a context manager that shuts down on exit.
    """

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline | None,
        coalesce_spans: Callable[[ReadableSpan], bool] | None = None,
        resource: Resource | None = None,
        drops: DropLedger | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self._settings = settings
        self._coalesce_spans = coalesce_spans
        self.resource = resource or resource_for(settings)
        self.relay_host: RelayHost | None = None
        """The relay serving child processes, when configured with ``relay=True``."""
        self.relay_child: ChildPipeline | None = pipeline.relay_child if pipeline else None
        """The pipeline to the parent's relay, when this process is a relay child."""
        self._drops = drops or DropLedger()
        self.memory: MemoryExporters | None = pipeline.memory if pipeline else None
        """In-memory exporters when configured with ``exporter="memory"``, else None."""
        self._pipeline = pipeline
        self._handler: logging.Handler | None = None
        self._sigterm_installed = False
        self._shutdown_done = False
        self._stop_lock = threading.Lock()
        self._stopped = threading.Event()
        self._said_unanswered = False
        self._said_bridge_gone = False
        self.sampler: TailSampler | None = None
        """The tail sampler, when configured with ``sampling=`` (``docs/sampling.md``)."""
        if pipeline is None:  # OTEL_SDK_DISABLED: the API's no-op providers stay in place
            self.tracer_provider: TracerProvider | None = None
            self.logger_provider: LoggerProvider | None = None
            self.meter_provider: MeterProvider | None = None
            return
        self.meter_provider = MeterProvider(
            resource=self.resource, metric_readers=pipeline.metric_readers, shutdown_on_exit=False
        )
        self._drops.bind_meter_provider(self.meter_provider)
        if pipeline.relay_child is None:  # the host coalesces what its children relay
            _wrap_coalescing(pipeline, settings, coalesce_spans, self.meter_provider)
            if settings.sampling is not None:  # the process that holds the trees decides
                self.sampler = wrap_sampling(pipeline, settings.sampling, self.meter_provider)
        self._span_switch = SwitchSpanProcessor(pipeline.span_processor)
        self._log_switch = SwitchLogProcessor(pipeline.log_processor)
        self.tracer_provider = TracerProvider(
            resource=self.resource, sampler=_sampler(settings), shutdown_on_exit=False
        )
        self.logger_provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False)
        # Scrubbing in front of the switch: this process's records, also after a fork;
        # what children relay to the switch was scrubbed in the child.
        spans, logs = scrubbing_processors(
            self._span_switch, self._log_switch, scrubber, settings, self.meter_provider
        )
        self.tracer_provider.add_span_processor(spans)
        self.logger_provider.add_log_record_processor(logs)
        self._drops.attach(self._log_switch, self.resource)

    @property
    def active(self) -> bool:
        """True until :meth:`shutdown` has run."""
        return not self._shutdown_done

    def export_counts(self) -> dict[str, tuple[int, int]]:
        """``{"traces": (exported, failed), "logs": (exported, failed)}`` so far: items the
        exporters handed on successfully and items they failed to (OTLP, memory)."""
        if self._pipeline is None:
            return {"traces": (0, 0), "logs": (0, 0)}
        return {
            signal: (counts.exported, counts.failed)
            for signal, counts in self._pipeline.counts.items()
        }

    def dropped(self) -> Mapping[tuple[str, str], int]:
        """What this pipeline dropped so far, a read-only snapshot: ``{(signal, reason): n}``
        (the ``otelkit.export.dropped`` metric's figures; see ``docs/relay.md``)."""
        return MappingProxyType(self._drops.totals())

    # -- installation -------------------------------------------------------------------

    def _install(self) -> None:
        if self._pipeline is None:
            return
        assert self.tracer_provider is not None
        assert self.logger_provider is not None
        assert self.meter_provider is not None
        _set_globals(self.tracer_provider, self.logger_provider, self.meter_provider)
        if self._settings.relay and self.relay_child is None:
            self._start_relay_host()
        level = self._settings.logging_level
        if level is not None:
            handler: logging.Handler
            if self._pipeline.logging_handler is not None:
                handler = self._pipeline.logging_handler(level)
                handler.addFilter(_SkipSuppressed())
            else:  # skips suppressed records itself, reading the context once a record
                handler = OtelLogHandler(self.logger_provider, level=level)
            logging.getLogger().addHandler(handler)
            self._handler = handler
            # A framework's logging set-up that replaces the root's handlers (Celery's) runs
            # within moments of start-up; a flush or shutdown checks again later.
            REAL_CLOCK.call_later(_BRIDGE_CHECK_DELAY, self._check_log_bridge_while_active)
        self._install_sigterm()

    def _start_relay_host(self) -> None:
        from otelkit import _sdk  # noqa: F401 - its self-checks run here, not in a forked child
        from otelkit.relay import RELAY_ENV, RelayHost

        assert self._pipeline is not None
        host = RelayHost(
            span_processor=self._span_switch,
            log_processor=self._log_switch,
            meter_provider=self.meter_provider,
            metric_exporter=self._pipeline.metric_exporter,
            _drops=self._drops,
            resource=self.resource,
        )
        host.start()
        self.relay_host = host
        os.environ[RELAY_ENV] = host.env_value  # inherited by spawned and forked children
        _active.set_hosting((os.getpid(), host.env_value))

    def _stop_relay_host(self, timeout: float) -> None:
        host, self.relay_host = self.relay_host, None
        if host is None:
            return
        from otelkit.relay import RELAY_ENV

        host.close(timeout)
        if os.environ.get(RELAY_ENV) == host.env_value:
            del os.environ[RELAY_ENV]
        _active.set_hosting(None)

    def _become_relay_child(self) -> None:
        """After ``fork`` in a relay host: export through the parent's relay from now on,
        under this process's own identity, with none of the host's exporters or values."""
        from otelkit import _sdk
        from otelkit.relay import RELAY_ENV, ChildPipeline

        # The parent's listener stays the parent's: the child neither serves nor removes it.
        self.relay_host = None
        relay_env = os.environ.get(RELAY_ENV)
        if relay_env is None or self._pipeline is None:
            return
        attributes = dict(self.resource.attributes)
        attributes.pop("service.instance.id", None)  # the child gets its own
        attributes["process.pid"] = os.getpid()
        child = ChildPipeline.from_env(relay_env, resource=Resource(attributes), exit_hooks=False)
        self._span_switch.delegate = child.span_processor
        self._log_switch.delegate = child.log_processor
        assert self.meter_provider is not None
        switch = self._pipeline.metric_exporter
        if _sdk.reset_metric_state(self.meter_provider):
            if switch is not None:
                switch.delegate = child.metric_exporter
        else:  # never the parent's values under the child's name: mute this child's metrics
            if switch is not None:
                switch.delegate = DiscardMetrics()
            _warn_fork_metrics_once()
        self.relay_child = child

    def _install_sigterm(self) -> None:
        # Only where SIGTERM has its default action: an application's handler stays its own.
        self._sigterm_installed = install_sigterm()

    # -- flushing and shutdown ------------------------------------------------------------

    def _timeout(self, timeout: float | None) -> float:
        if timeout is None:
            return self._settings.shutdown_timeout
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}")
        return timeout

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export everything buffered; True when done within ``timeout`` seconds
        (default ``shutdown_timeout``).

        When nothing accepts connections at an OTLP endpoint it returns False at once,
        saying so once on stderr (again only after a flush has succeeded since); the
        telemetry stays queued for the exporters' own schedule.
        """
        seconds = self._timeout(timeout)
        if self._pipeline is None or self._shutdown_done:
            return True
        if self._nobody_answers(seconds):
            return False
        assert self.tracer_provider is not None
        assert self.logger_provider is not None
        assert self.meter_provider is not None
        tp, lp, mp = self.tracer_provider, self.logger_provider, self.meter_provider
        deadline = time.monotonic() + seconds

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        # In order, each step bounded by what is left: the metric collection first (in a
        # relay child it is queued beside the spans and logs), then spans and logs, then a
        # relay child's own buffer, so that True means everything recorded before the call
        # was exported or written to the relay.
        done = _run_bounded([lambda: mp.force_flush(int(left() * 1000))], left())
        done = (
            _run_bounded(
                [
                    lambda: tp.force_flush(int(left() * 1000)),
                    lambda: lp.force_flush(int(left() * 1000)),
                ],
                left(),
            )
            and done
        )
        child = self.relay_child
        if child is not None:
            done = child.force_flush(int(left() * 1000)) and done
        self._check_log_bridge()
        if done:
            self._said_unanswered = False
        return done

    def _nobody_answers(self, seconds: float) -> bool:
        """True (and said once) when nothing accepts connections at an OTLP endpoint."""
        if self._settings.exporter != "otlp" or self.relay_child is not None:
            return False
        targets = self._settings.targets
        refused = refusing((t.endpoint for t in targets.values()), min(seconds, 0.5))
        if refused and not self._said_unanswered:
            self._said_unanswered = True
            where = ", ".join(f"{hp} ({why})" for hp, why in refused.items())
            say(
                f"otelkit: force_flush: nothing answers at {where}; the telemetry stays queued, "
                "not exported. Start a Collector (docker compose up -d), point endpoint= "
                "(OTEL_EXPORTER_OTLP_ENDPOINT) at one, or set OTELKIT_EXPORTER=console."
            )
        return bool(refused)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and stop the pipeline within ``timeout`` seconds (default ``shutdown_timeout``).

        Bounded even when the Collector is unreachable: if nothing accepts connections at
        the endpoint, queued telemetry is reported as not exported instead of waited on.
        Returns True when everything was exported in time. Idempotent.
        """
        seconds = self._timeout(timeout)
        with self._stop_lock:
            first = not self._shutdown_done
            self._shutdown_done = True
        if not first:  # another thread (a SIGTERM, the exit hook) is shutting down: wait for it
            return self._stopped.wait(seconds)
        _active.leave(self)  # a SIGTERM during this shutdown waits for it (_sigterm)
        if self._handler is not None:
            self._check_log_bridge()
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
        try:
            return self._stop(seconds)
        finally:
            self._stopped.set()
            # Only now: a SIGTERM during the flush above must wait for it, not kill it.
            self._uninstall_sigterm()

    def _check_log_bridge(self) -> None:
        """Say once when someone else took the logging bridge off the root logger (Celery's
        ``worker_hijack_root_logger`` empties the root's handlers): the application's log
        records stop reaching OpenTelemetry, and nothing else would tell."""
        handler = self._handler
        if handler is None or self._said_bridge_gone or handler in logging.getLogger().handlers:
            return
        self._said_bridge_gone = True
        logging.getLogger("otelkit").warning(
            "otelkit: its logging bridge was removed from the root logger after configure(), "
            "so log records no longer reach OpenTelemetry. Under Celery use otelkit.celery "
            "(docs/task-queues.md), or call otelkit.configure() again after your logging "
            "set-up."
        )

    def _check_log_bridge_while_active(self) -> None:
        if self.active:
            self._check_log_bridge()

    def _reattach_log_bridge(self) -> None:
        """Put the logging bridge back on the root logger if someone took it off."""
        handler = self._handler
        root = logging.getLogger()
        if handler is not None and self.active and handler not in root.handlers:
            root.addHandler(handler)

    def _uninstall_sigterm(self) -> None:
        if self._sigterm_installed:
            _sigterm.uninstall()

    @property
    def stopped(self) -> bool:
        """True once :meth:`shutdown` has finished."""
        return self._stopped.is_set()

    def _stop(self, seconds: float) -> bool:
        if self._pipeline is None:
            return True
        assert self.tracer_provider is not None
        assert self.logger_provider is not None
        assert self.meter_provider is not None
        deadline = time.monotonic() + seconds
        if (
            self._settings.exporter == "otlp"
            and self.relay_child is None
            and refusing([self._settings.targets["traces"].endpoint], 0.25)
        ):
            # Interrupt retries first: the queues then drain at once (counted as failed
            # exports), so the relay below still reads and counts what children sent.
            for hook in self._pipeline.shutdown_hooks:
                hook()
            deadline = min(deadline, time.monotonic() + 1.0)

            say(  # one write: no other thread's output lands in the middle of the line
                f"otelkit: nothing listens at {self._settings.targets['traces'].endpoint}; "
                "telemetry still queued was not exported"
            )
        # Reads what children wrote before they exited, within half of what is left.
        self._stop_relay_host(max(0.0, deadline - time.monotonic()) / 2)
        done = self._stop_providers(deadline)
        if not done:
            for hook in self._pipeline.shutdown_hooks:
                with contextlib.suppress(Exception):  # already past the deadline
                    hook()
        return done

    def _stop_providers(self, deadline: float) -> bool:
        """Metrics first in a relay child (the last collection travels with the relay's
        final flush); the queues flushed, then the drop report (so it still reaches the log
        pipeline), then everything shut down; what shutdown gave up on goes to stderr."""
        assert self._pipeline is not None
        tp, lp, mp = self.tracer_provider, self.logger_provider, self.meter_provider
        assert tp is not None and lp is not None and mp is not None

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        child = self.relay_child
        if child is not None:
            _run_bounded([lambda: mp.shutdown(timeout_millis=int(left() * 1000))], left())
            # Here, not in a bounded thread: the relay's shutdown bounds itself, and when its
            # flush runs out of time it still counts and reports what it gives up (the
            # process may end right after this call, taking its threads with it).
            child.shutdown(timeout=max(0.0, left() - _RELAY_REPORT_MARGIN))
        millis = int(left() * 1000)
        _run_bounded([lambda: tp.force_flush(millis), lambda: lp.force_flush(millis)], left())
        self._drops.report_now()
        batchers = self._pipeline.batchers
        done = _run_bounded([functools.partial(_shutdown_core, b, left) for b in batchers], left())
        millis = int(left() * 1000)
        tasks: list[Callable[[], object]] = [tp.shutdown, lp.shutdown]
        if self.relay_child is None:  # a relay child's meter provider is already shut down
            tasks.append(lambda: mp.shutdown(timeout_millis=millis))
        done = _run_bounded(tasks, left()) and done
        self._drops.report_now()
        return done

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


_BRIDGE_CHECK_DELAY = 5.0  # seconds after configure() that the logging bridge is checked
_RELAY_REPORT_MARGIN = 0.1  # seconds a relay child's shutdown takes past its flush to report


def _shutdown_core(core: BatchCore[Any], left: Callable[[], float]) -> None:
    core.shutdown(left())


def _set_globals(tp: TracerProvider, lp: LoggerProvider, mp: MeterProvider) -> None:
    # The API allows setting each global provider once per process; otelkit owns the
    # pipeline, so a reconfiguration replaces them (``otelkit._sdk.providers``).
    from otelkit._sdk.providers import set_global_providers

    set_global_providers(tp, lp, mp)


_fork_metrics_warned = False


def _warn_fork_metrics_once() -> None:
    global _fork_metrics_warned
    if not _fork_metrics_warned:
        _fork_metrics_warned = True
        logging.getLogger("otelkit").warning(
            "otelkit: this OpenTelemetry SDK cannot give a forked child fresh metric state, so "
            "the metrics of fork children of a relay host are not relayed (the parent's values "
            "would be reported again under the child); use spawn, or see docs/sdk-seam.md"
        )


def _wrap_coalescing(
    pipeline: Pipeline,
    settings: Settings,
    coalesce_spans: Callable[[ReadableSpan], bool] | None,
    meter_provider: MeterProvider,
) -> None:
    """Put the coalescing processors in front of the exporting ones (principle: wrap,
    don't sit beside), so that relayed records from child processes pass through them too."""
    from otelkit.coalesce import CoalescingLogRecordProcessor, CoalescingSpanProcessor

    window = settings.coalesce_window
    if window is not None:
        pipeline.log_processor = CoalescingLogRecordProcessor(
            pipeline.log_processor, window=window, meter_provider=meter_provider
        )
    if coalesce_spans is not None:
        pipeline.span_processor = CoalescingSpanProcessor(
            pipeline.span_processor,
            window=window or 10.0,
            predicate=coalesce_spans,
            meter_provider=meter_provider,
        )
