"""Importing an optional dependency: when it is missing, the error names the extra to install.

Each optional dependency of otelkit comes with an extra of ``pyproject.toml``
(``pip install 'otelkit[redis]'``); :func:`require` is the one place that turns a missing
one into :class:`otelkit.errors.MissingDependencyError` saying which.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from otelkit.errors import MissingDependencyError

__all__ = ["missing", "require"]


def require(module: str, *, extra: str, needed_by: str) -> ModuleType:
    """Import ``module``; if it (or what it imports) is missing, raise
    :class:`MissingDependencyError` naming ``needed_by`` and ``pip install 'otelkit[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing(module, exc, extra=extra, needed_by=needed_by) from exc


def missing(module: str, exc: ImportError, *, extra: str, needed_by: str) -> MissingDependencyError:
    """The error for ``exc``, raised importing ``module`` (for a static ``import``)."""
    return MissingDependencyError(
        f"{needed_by} needs {module.partition('.')[0]}, which is not installed ({exc}); "
        f"install it with: pip install 'otelkit[{extra}]'",
        name=exc.name,
    )
