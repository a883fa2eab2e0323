"""The public names of otelkit.coalesce: complete, sorted, documented."""

from __future__ import annotations

import otelkit.coalesce as coalesce


def _isort_style(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_names_exist() -> None:
    assert coalesce.__all__ == sorted(coalesce.__all__, key=_isort_style)
    for name in coalesce.__all__:
        assert hasattr(coalesce, name), name


def test_every_public_callable_has_a_docstring() -> None:
    for name in coalesce.__all__:
        value = getattr(coalesce, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"
