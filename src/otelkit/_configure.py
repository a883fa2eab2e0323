"""``configure()``: resolve the settings, build the pipeline and make it the process's
active one; ``flush()`` and ``current()`` for the active one.

One pipeline is active per process. ``configure()`` with the same resolved settings returns
the active handle; with different settings it shuts the active one down (flushing it) and
installs the new one, so no handler, processor or record is ever doubled.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import ReadableSpan

from otelkit import _active, _forksignals, _process_hooks
from otelkit._active import current
from otelkit._config import _UNSET, Settings, resolve_settings
from otelkit._drops import DropLedger
from otelkit._pipeline import (
    Pipeline,
    build_relay_child_pipeline,
    make_scrubber,
)
from otelkit._telemetry import Telemetry, resource_for

if TYPE_CHECKING:
    from otelkit.sampling import SamplingOptions
    from otelkit.scrubbing import ScrubbingOptions

__all__ = ["configure", "current", "flush", "reattach_log_bridge"]


def reattach_log_bridge() -> None:
    """Put the active pipeline's logging bridge back on the root logger if it was removed
    (for framework recipes whose logging set-up replaces the root's handlers)."""
    telemetry = current()
    if telemetry is not None:
        telemetry._reattach_log_bridge()


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
    scrubbing: bool | ScrubbingOptions | None = None,
    sampling: bool | SamplingOptions | None = None,
) -> Telemetry:
    """Install OpenTelemetry traces, metrics and logs for this process; return the handle.

    Every option is keyword-only and falls back to its environment variable, then to the
    default (see docs/configuration.md). Bad values raise ``ValueError``
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
        scrubbing=scrubbing,
        sampling=sampling,
    )
    if coalesce_spans is not None and not callable(coalesce_spans):
        raise ValueError("otelkit.configure: coalesce_spans must be a predicate (span -> bool)")
    _process_hooks.install()
    with _active.lock:
        relay_env = os.environ.get("OTELKIT_RELAY")
        as_child = bool(relay_env) and _active.hosting() != (os.getpid(), relay_env)
        if as_child and settings.relay:
            _warn_relay_in_child()
        active = _active.current()
        if active is not None and active.active:
            same = _comparable(active._settings) == _comparable(settings)
            if same and active._coalesce_spans is coalesce_spans:
                active._reattach_log_bridge()
                return active
            if as_child and active.relay_child is not None and same:
                return active  # relay=True in a child that already relays: nothing changes
            active.shutdown()
        resource = resource_for(settings)
        pipeline: Pipeline | None
        drops = DropLedger(meter_provider=NoOpMeterProvider())  # bound to the new provider
        scrubber = make_scrubber(settings.scrubbing)
        if settings.disabled:
            pipeline = None
        elif as_child:
            assert relay_env is not None
            pipeline = build_relay_child_pipeline(
                resource, relay_env, settings.metric_interval, scrubber
            )
        else:
            from otelkit._exporters import build_pipeline

            pipeline = build_pipeline(settings, drops)
        telemetry = Telemetry(settings, pipeline, coalesce_spans, resource, drops, scrubber)
        _forksignals.end_block_after_latest_hooks()
        telemetry._install()
        _active.set_current(telemetry)
        return telemetry


def _warn_relay_in_child() -> None:
    logging.getLogger("otelkit").warning(
        "otelkit.configure(relay=True) in a child of a relay host (OTELKIT_RELAY is "
        "inherited): exporting to the parent's relay instead of serving a new one. In a "
        "pre-fork server call configure(relay=True) in the master only (docs/prefork.md)."
    )
