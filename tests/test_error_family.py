"""otelkit.OtelkitError: every caller's mistake raises a member of the family, which also
derives from the builtin that code catches today."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import otelkit
from otelkit.coalesce import CoalescingLogRecordProcessor, CoalescingSpanProcessor, attributes_key
from otelkit.jobs import JobNotFoundError, JobNotReadyError, LeaseLostError, SchemaMissingError
from otelkit.preload import MemoryCache, Preloader
from tests.coalesce.test_logs import Spy
from tests.coalesce.test_spans import Recorder


def test_the_family_derives_from_the_builtins_code_already_catches() -> None:
    assert issubclass(otelkit.InvalidOptionError, ValueError)
    assert issubclass(otelkit.OptionTypeError, TypeError)
    for error in (JobNotFoundError, JobNotReadyError, LeaseLostError, SchemaMissingError):
        assert issubclass(error, otelkit.OtelkitError)
    assert issubclass(SchemaMissingError, ValueError) and issubclass(JobNotFoundError, LookupError)


_BAD_VALUES: list[tuple[str, Callable[[], object]]] = [
    ("configure shutdown_timeout", lambda: otelkit.configure(shutdown_timeout=-1)),
    ("log coalescing window", lambda: CoalescingLogRecordProcessor(Spy(), window=0)),
    ("span coalescing max_keys", lambda: CoalescingSpanProcessor(Recorder(), max_keys=0)),
    ("log key preset", lambda: CoalescingLogRecordProcessor(Spy(), key="nope")),
    ("attributes_key without names", lambda: attributes_key()),
    ("preloader half_life", lambda: Preloader(MemoryCache(), half_life=-1)),
]
_BAD_TYPES: list[tuple[str, Callable[[], object]]] = [
    ("log coalescing window", lambda: CoalescingLogRecordProcessor(Spy(), window="10")),  # type: ignore[arg-type]
    ("log coalescing per_resource", lambda: CoalescingLogRecordProcessor(Spy(), per_resource="no")),  # type: ignore[arg-type]
    ("span predicate", lambda: CoalescingSpanProcessor(Recorder(), predicate=3)),  # type: ignore[arg-type]
    ("log processor downstream", lambda: CoalescingLogRecordProcessor(object())),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("what", "call"), _BAD_VALUES, ids=[w for w, _ in _BAD_VALUES])
def test_a_bad_value_raises_invalid_option_error(what: str, call: Callable[[], object]) -> None:
    with pytest.raises(otelkit.InvalidOptionError):
        call()


@pytest.mark.parametrize(("what", "call"), _BAD_TYPES, ids=[w for w, _ in _BAD_TYPES])
def test_a_wrong_type_raises_option_type_error(what: str, call: Callable[[], object]) -> None:
    with pytest.raises(otelkit.OptionTypeError):
        call()
