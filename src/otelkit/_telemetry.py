"""``configure()`` and the :class:`Telemetry` handle: install, flush and shut down the SDK.

One pipeline is active per process. ``configure()`` with the same resolved settings returns
the active handle; with different settings it shuts the active one down (flushing it) and
installs the new one, so no handler, processor or record is ever doubled.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import _logs, context, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider, sampling

from otelkit._config import _UNSET, Settings, resolve_settings
from otelkit._logbridge import OtelLogHandler
from otelkit._pipeline import (
    Pipeline,
    SwitchLogProcessor,
    SwitchSpanProcessor,
    build_relay_child_pipeline,
)

if TYPE_CHECKING:
    from otelkit._exporters import MemoryExporters
    from otelkit.relay import RelayHost

__all__ = ["Telemetry", "configure", "current", "flush"]

_lock = threading.RLock()
_current: Telemetry | None = None


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


def _resource(settings: Settings) -> Resource:
    attrs: dict[str, Any] = dict(settings.resource_attributes)
    attrs["service.name"] = settings.service_name
    if settings.service_version:
        attrs["service.version"] = settings.service_version
    if settings.environment:
        attrs["deployment.environment.name"] = settings.environment
    attrs["process.pid"] = os.getpid()
    return Resource.create(attrs)


class _SkipSuppressed(logging.Filter):
    """Drops records logged while instrumentation is suppressed (inside an export):
    an exporter's own "export failed" warning must not feed the pipeline that failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not context.get_value(context._SUPPRESS_INSTRUMENTATION_KEY)


def _run_bounded(tasks: list[Callable[[], object]], timeout: float) -> bool:
    """Run ``tasks`` in parallel daemon threads; True when all finished within ``timeout``."""
    threads = [threading.Thread(target=task, daemon=True, name="otelkit-flush") for task in tasks]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def _endpoint_refuses(url: str, timeout: float = 0.25) -> bool:
    """True when nothing accepts TCP connections at ``url`` (so a final flush cannot succeed)."""
    parsed = urllib.parse.urlsplit(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "localhost", port), timeout=timeout):
            return False
    except OSError:
        return True


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
    ) -> None:
        self.settings = settings
        self.coalesce_spans = coalesce_spans
        self.resource = resource or _resource(settings)
        self.relay_host: RelayHost | None = None
        """The relay serving child processes, when configured with ``relay=True``."""
        self._relay_child = bool(pipeline and pipeline.relay_child)
        self.memory: MemoryExporters | None = pipeline.memory if pipeline else None
        """In-memory exporters when configured with ``exporter="memory"``, else None."""
        self._pipeline = pipeline
        self._handler: logging.Handler | None = None
        self._sigterm_installed = False
        self._shutdown_done = False
        self._stop_lock = threading.Lock()
        if pipeline is None:  # OTEL_SDK_DISABLED: the API's no-op providers stay in place
            self.tracer_provider: TracerProvider | None = None
            self.logger_provider: LoggerProvider | None = None
            self.meter_provider: MeterProvider | None = None
            return
        self.meter_provider = MeterProvider(
            resource=self.resource, metric_readers=pipeline.metric_readers, shutdown_on_exit=False
        )
        if not pipeline.relay_child:  # the host coalesces what its children relay
            _wrap_coalescing(pipeline, settings, coalesce_spans, self.meter_provider)
        self.span_processor = SwitchSpanProcessor(pipeline.span_processor)
        self.log_processor = SwitchLogProcessor(pipeline.log_processor)
        self.tracer_provider = TracerProvider(
            resource=self.resource, sampler=_sampler(settings), shutdown_on_exit=False
        )
        self.tracer_provider.add_span_processor(self.span_processor)
        self.logger_provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(self.log_processor)

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

    # -- installation -------------------------------------------------------------------

    def _install(self) -> None:
        if self._pipeline is None:
            return
        assert self.tracer_provider is not None
        assert self.logger_provider is not None
        assert self.meter_provider is not None
        _set_globals(self.tracer_provider, self.logger_provider, self.meter_provider)
        if self.settings.relay:
            self._start_relay_host()
        level = self.settings.logging_level
        if level is not None:
            handler: logging.Handler
            if self._pipeline.logging_handler is not None:
                handler = self._pipeline.logging_handler(level)
            else:
                handler = OtelLogHandler(self.logger_provider, level=level)
            handler.addFilter(_SkipSuppressed())
            logging.getLogger().addHandler(handler)
            self._handler = handler
        self._install_sigterm()

    def _start_relay_host(self) -> None:
        from otelkit.relay import RELAY_ENV, RelayHost

        host = RelayHost(
            span_processor=self.span_processor,
            log_processor=self.log_processor,
            meter_provider=self.meter_provider,
            resource=self.resource,
        )
        host.start()
        self.relay_host = host
        os.environ[RELAY_ENV] = host.env_value  # inherited by spawned and forked children

    def _stop_relay_host(self, timeout: float) -> None:
        host, self.relay_host = self.relay_host, None
        if host is None:
            return
        from otelkit.relay import RELAY_ENV

        host.close(timeout)
        if os.environ.get(RELAY_ENV) == host.env_value:
            del os.environ[RELAY_ENV]

    def _become_relay_child(self) -> None:
        """After ``fork`` in a relay host: export through the parent's relay from now on."""
        from otelkit.relay import RELAY_ENV, ChildPipeline

        # The parent's listener stays the parent's: the child neither serves nor removes it.
        self.relay_host = None
        relay_env = os.environ.get(RELAY_ENV)
        if relay_env is None or self._pipeline is None:
            return
        resource = self.resource.merge(Resource({"process.pid": os.getpid()}))
        child = ChildPipeline.from_env(relay_env, resource=resource)
        self.span_processor.delegate = child.span_processor
        self.log_processor.delegate = child.log_processor
        self._relay_child = True

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
                return  # the application handles SIGTERM itself: leave it alone
            signal.signal(signal.SIGTERM, _on_sigterm)
            self._sigterm_installed = True
        except (ValueError, OSError):
            pass

    # -- flushing and shutdown ------------------------------------------------------------

    def _timeout(self, timeout: float | None) -> float:
        if timeout is None:
            return self.settings.shutdown_timeout
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}")
        return timeout

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export everything buffered; True when done within ``timeout`` seconds
        (default ``shutdown_timeout``)."""
        seconds = self._timeout(timeout)
        if self._pipeline is None or self._shutdown_done:
            return True
        assert self.tracer_provider is not None
        assert self.logger_provider is not None
        assert self.meter_provider is not None
        millis = int(seconds * 1000)
        tp, lp, mp = self.tracer_provider, self.logger_provider, self.meter_provider
        return _run_bounded(
            [
                lambda: tp.force_flush(millis),
                lambda: lp.force_flush(millis),
                lambda: mp.force_flush(millis),
            ],
            seconds,
        )

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and stop the pipeline within ``timeout`` seconds (default ``shutdown_timeout``).

        Bounded even when the Collector is unreachable: if nothing accepts connections at
        the endpoint, queued telemetry is reported as not exported instead of waited on.
        Returns True when everything was exported in time. Idempotent.
        """
        seconds = self._timeout(timeout)
        with self._stop_lock:
            if self._shutdown_done:
                return True
            self._shutdown_done = True
        global _current
        with _lock:
            if _current is self:
                _current = None
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
        if self._sigterm_installed:
            try:
                if signal.getsignal(signal.SIGTERM) is _on_sigterm:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
            except (ValueError, OSError):
                pass
        if self._pipeline is None:
            return True
        assert self.tracer_provider is not None
        assert self.logger_provider is not None
        assert self.meter_provider is not None
        self._stop_relay_host(seconds)
        if (
            self.settings.exporter == "otlp"
            and not self._relay_child
            and _endpoint_refuses(self.settings.targets["traces"].endpoint)
        ):
            for hook in self._pipeline.shutdown_hooks:
                hook()  # interrupt retries: nothing listens
            seconds = min(seconds, 0.5)
            print(
                f"otelkit: nothing listens at {self.settings.targets['traces'].endpoint}; "
                "telemetry still queued was not exported",
                file=sys.stderr,
            )
        millis = int(seconds * 1000)
        tp, lp, mp = self.tracer_provider, self.logger_provider, self.meter_provider
        done = _run_bounded(
            [tp.shutdown, lp.shutdown, lambda: mp.shutdown(timeout_millis=millis)], seconds
        )
        if not done:
            for hook in self._pipeline.shutdown_hooks:
                with contextlib.suppress(Exception):  # already past the deadline
                    hook()
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


def _set_globals(tp: TracerProvider, lp: LoggerProvider, mp: MeterProvider) -> None:
    # The API allows setting each global provider once per process; otelkit owns the
    # pipeline, so a reconfiguration resets that guard (as the SDK's own tests do).
    trace._TRACER_PROVIDER_SET_ONCE._done = False
    trace.set_tracer_provider(tp)
    _logs._internal._LOGGER_PROVIDER_SET_ONCE._done = False
    _logs.set_logger_provider(lp)
    metrics._internal._METER_PROVIDER_SET_ONCE._done = False
    metrics.set_meter_provider(mp)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    telemetry = current()
    if telemetry is not None:
        telemetry.shutdown()
    # Terminate as the default handler would have.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _at_exit() -> None:
    telemetry = current()
    if telemetry is not None:
        telemetry.shutdown()


def _after_fork_in_child() -> None:
    telemetry = _current
    if telemetry is not None and telemetry.relay_host is not None and telemetry.active:
        telemetry._become_relay_child()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)


def current() -> Telemetry | None:
    """The active :class:`Telemetry`, or None before ``configure()`` / after shutdown."""
    with _lock:
        return _current


def flush(timeout: float | None = None) -> bool:
    """Flush the active pipeline (see :meth:`Telemetry.force_flush`); True if none is active."""
    telemetry = current()
    return True if telemetry is None else telemetry.force_flush(timeout)


def _comparable(settings: Settings) -> Settings:
    from dataclasses import replace

    return replace(settings, sources={})


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    resource_attributes: dict[str, Any] | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: str | dict[str, str] | None = None,
    exporter: str | None = None,
    logging_level: int | str | None = _UNSET,
    sampler: str | None = None,
    sample_ratio: float | None = None,
    metric_interval: float | None = None,
    shutdown_timeout: float | None = None,
    coalesce_window: float | bool | None = _UNSET,
    coalesce_spans: Callable[[ReadableSpan], bool] | None = None,
    relay: bool | None = None,
) -> Telemetry:
    """Install OpenTelemetry traces, metrics and logs for this process; return the handle.

    Every option is keyword-only and falls back to its environment variable, then to the
    default (see the README's configuration reference). Bad values raise ``ValueError``
    naming the option before anything is installed. Calling again with the same resolved
    settings returns the active handle; with different settings the active pipeline is
    shut down (flushed) and replaced.
    """
    settings = resolve_settings(
        service_name=service_name,
        service_version=service_version,
        environment=environment,
        resource_attributes=resource_attributes,
        endpoint=endpoint,
        protocol=protocol,
        headers=headers,
        exporter=exporter,
        logging_level="none" if logging_level is None else logging_level,
        sampler=sampler,
        sample_ratio=sample_ratio,
        metric_interval=metric_interval,
        shutdown_timeout=shutdown_timeout,
        coalesce_window=False if coalesce_window is None else coalesce_window,
        relay=relay,
    )
    if coalesce_spans is not None and not callable(coalesce_spans):
        raise ValueError("otelkit.configure: coalesce_spans must be a predicate (span -> bool)")
    global _current
    with _lock:
        active = _current
        if active is not None and active.active:
            same = _comparable(active.settings) == _comparable(settings)
            if same and active.coalesce_spans is coalesce_spans:
                return active
            active.shutdown()
        resource = _resource(settings)
        relay_env = os.environ.get("OTELKIT_RELAY")
        pipeline: Pipeline | None
        if settings.disabled:
            pipeline = None
        elif relay_env and not settings.relay:
            pipeline = build_relay_child_pipeline(resource, relay_env)
        else:
            from otelkit._exporters import build_pipeline

            pipeline = build_pipeline(settings)
        telemetry = Telemetry(settings, pipeline, coalesce_spans, resource)
        telemetry._install()
        _current = telemetry
        return telemetry


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
