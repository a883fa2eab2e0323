"""The exceptions otelkit raises for a caller's mistake.

Every one derives from :class:`OtelkitError`, and also from the builtin exception code
already catches for that kind of mistake, so ``except ValueError`` keeps working:

- :class:`InvalidOptionError` (``ValueError``): an option or argument has the right type
  but a value otelkit cannot use (a negative timeout, an endpoint without a scheme).
- :class:`OptionTypeError` (``TypeError``): an option or argument of the wrong type.
- :class:`MissingDependencyError` (``ImportError``): a feature needs an optional dependency
  that is not installed; the message names the extra that installs it.

Packages add their own subclasses (``otelkit.jobs.SchemaMissingError``,
``otelkit.jobs.JobNotFoundError``, ...). The message always names the option and says how
to fix it.
"""

from __future__ import annotations

__all__ = ["InvalidOptionError", "MissingDependencyError", "OptionTypeError", "OtelkitError"]


class OtelkitError(Exception):
    """Base of every exception otelkit raises for a caller's mistake."""


class InvalidOptionError(OtelkitError, ValueError):
    """An option or argument of the right type whose value otelkit cannot use."""


class OptionTypeError(OtelkitError, TypeError):
    """An option or argument of the wrong type."""


class MissingDependencyError(OtelkitError, ImportError):
    """A feature needs an optional dependency that is not installed.

    The message names the extra that installs it (``pip install 'otelkit[async]'``).
    """
