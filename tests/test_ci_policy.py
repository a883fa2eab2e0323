"""Under CI=true a skipped PostgreSQL or collector test fails the run (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

@pytest.mark.postgres
def test_needs_postgres():
    pytest.skip("no database")

def test_plain():
    pytest.skip("optional part")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    postgres: x\n    collector: x\n")
    pytester.makepyfile(test_skipping=SKIPPING)
    return pytester


def test_a_skipped_postgres_test_fails_the_run_in_ci(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*real-part tests skipped: FAILED (CI=true)*", "*test_needs_postgres*"]
    )


def test_outside_ci_the_same_skip_is_only_reported(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*real-part tests skipped: skipped locally*"])
