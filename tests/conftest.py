"""Project-wide test policy.

Under ``CI=true`` a skipped PostgreSQL, Redis, collector or browser (headless Chromium) test
fails the run: CI has all four, so a skip there means a broken set-up, not a missing
optional part.
"""

from __future__ import annotations

import os

import pytest

_REAL_PART_MARKERS = ("postgres", "redis", "collector", "browser")
_skipped_real_parts: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and any(item.get_closest_marker(m) for m in _REAL_PART_MARKERS):
        _skipped_real_parts.append(item.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _in_ci() and _skipped_real_parts:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if _skipped_real_parts:
        verdict = "FAILED (CI=true)" if _in_ci() else "skipped locally"
        terminalreporter.section(f"real-part tests skipped: {verdict}")
        for nodeid in _skipped_real_parts:
            terminalreporter.line(nodeid)
