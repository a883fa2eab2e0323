"""Internal errors: every one counted, each kind logged at most once per interval."""

from __future__ import annotations

import logging

import pytest

from otelkit._errors import internal_error_counts, report_internal_error


def test_repeats_are_counted_but_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    before = internal_error_counts().get("test.component", 0)
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        for _ in range(3):
            report_internal_error("test.component", ValueError("broken"))
        report_internal_error("test.component", KeyError("other kind"))
    assert internal_error_counts()["test.component"] == before + 4
    messages = [r.getMessage() for r in caplog.records if r.name == "otelkit"]
    assert sum("ValueError: broken" in m for m in messages) == 1
    assert sum("KeyError" in m for m in messages) == 1
