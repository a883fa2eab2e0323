"""Global-provider shortcuts: replacing the API's set-once global providers.

The API lets each global provider (tracer, logger, meter) be set once per process; otelkit
owns the pipeline and replaces it on a reconfiguration. The shortcut resets the API's
set-once guards (as the SDK's own tests do) and sets the new providers. The public fallback
sets otelkit's forwarding providers once and points them at each new pipeline: tracers and
loggers obtained from them follow a reconfiguration; meters (and their instruments) stay
with the pipeline they were made on, as with the shortcut.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import _logs, metrics, trace

from otelkit._sdk._check import checked

__all__ = ["GLOBALS_RESET_OK", "set_global_providers"]


def _guards() -> tuple[Any, Any, Any]:
    from opentelemetry._logs import _internal as logs_internal
    from opentelemetry.metrics import _internal as metrics_internal

    return (
        trace._TRACER_PROVIDER_SET_ONCE,
        logs_internal._LOGGER_PROVIDER_SET_ONCE,
        metrics_internal._METER_PROVIDER_SET_ONCE,
    )


def _check_guards() -> bool:
    """Each guard is the API's ``Once`` with a boolean ``_done``, and a reset ``Once`` runs
    its function again. (Whether setting then takes effect is checked on every use.)"""
    from opentelemetry.util._once import Once

    guards = _guards()
    if not all(type(g) is Once and isinstance(g._done, bool) for g in guards):
        return False
    once, runs = Once(), []
    once.do_once(lambda: runs.append(1))
    once.do_once(lambda: runs.append(2))
    once._done = False
    once.do_once(lambda: runs.append(3))
    return runs == [1, 3]


GLOBALS_RESET_OK = checked("set_global_providers", _check_guards)
"""Whether a reconfiguration may reset the API's set-once guards."""


class _Forwarding:
    """The part every forwarding provider shares: its target, and a generation count that
    the tracers and loggers it handed out compare with their own."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self._generation = 0

    def _retarget(self, target: Any) -> None:
        self._target = target
        self._generation += 1

    def __getattr__(self, name: str) -> Any:  # force_flush, shutdown, resource, ...
        return getattr(self.__dict__["_target"], name)


class _FollowingTracer(trace.Tracer):
    def __init__(self, owner: _ForwardingTracerProvider, args: Any, kwargs: Any) -> None:
        self._owner, self._args, self._kwargs = owner, args, kwargs
        self._generation = -1
        self._tracer: Any = None

    def _real(self) -> Any:
        owner = self._owner
        if self._generation != owner._generation:
            self._tracer = owner._target.get_tracer(*self._args, **self._kwargs)
            self._generation = owner._generation
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._real().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._real().start_as_current_span(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)


class _ForwardingTracerProvider(_Forwarding, trace.TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _FollowingTracer(self, args, kwargs)


class _FollowingLogger(_logs.Logger):
    def __init__(self, owner: _ForwardingLoggerProvider, args: Any, kwargs: Any) -> None:
        self._owner, self._args, self._kwargs = owner, args, kwargs
        self._generation = -1
        self._logger: Any = None

    def _real(self) -> Any:
        owner = self._owner
        if self._generation != owner._generation:
            self._logger = owner._target.get_logger(*self._args, **self._kwargs)
            self._generation = owner._generation
        return self._logger

    def emit(self, *args: Any, **kwargs: Any) -> None:
        self._real().emit(*args, **kwargs)

    def enabled(self, *args: Any, **kwargs: Any) -> bool:  # newer APIs only
        return bool(self._real().enabled(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)


class _ForwardingLoggerProvider(_Forwarding, _logs.LoggerProvider):
    def get_logger(self, *args: Any, **kwargs: Any) -> _logs.Logger:
        return _FollowingLogger(self, args, kwargs)


class _ForwardingMeterProvider(_Forwarding, metrics.MeterProvider):
    def get_meter(self, *args: Any, **kwargs: Any) -> metrics.Meter:
        meter: metrics.Meter = self._target.get_meter(*args, **kwargs)
        return meter


_lock = threading.Lock()
_forwarding: tuple[_Forwarding, _Forwarding, _Forwarding] | None = None


def _by_reset(tp: Any, lp: Any, mp: Any) -> bool:
    guards = _guards()
    guards[0]._done = False
    trace.set_tracer_provider(tp)
    guards[1]._done = False
    _logs.set_logger_provider(lp)
    guards[2]._done = False
    metrics.set_meter_provider(mp)
    return (
        trace.get_tracer_provider() is tp
        and _logs.get_logger_provider() is lp
        and metrics.get_meter_provider() is mp
    )


def set_global_providers(tp: Any, lp: Any, mp: Any) -> None:
    """Make ``tp``, ``lp`` and ``mp`` the global providers, also when others were set
    before in this process (a reconfiguration)."""
    global _forwarding
    with _lock:
        if _forwarding is None and GLOBALS_RESET_OK and _by_reset(tp, lp, mp):
            return
        if _forwarding is None:
            _forwarding = (
                _ForwardingTracerProvider(tp),
                _ForwardingLoggerProvider(lp),
                _ForwardingMeterProvider(mp),
            )
            trace.set_tracer_provider(_forwarding[0])
            _logs.set_logger_provider(_forwarding[1])
            metrics.set_meter_provider(_forwarding[2])
            return
        for forwarding, target in zip(_forwarding, (tp, lp, mp), strict=True):
            forwarding._retarget(target)
