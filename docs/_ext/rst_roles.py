"""A griffe extension for the API reference: Sphinx roles in docstrings as code spans.

otelkit's docstrings name other objects the Sphinx way (``:class:`Telemetry```), which
Markdown would print literally; this renders each as ``Telemetry`` in code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj|const|ref):`~?([^`]+)`")


class RstRoles(griffe.Extension):
    """Rewrites ``:role:`name``` to a Markdown code span in every loaded docstring."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(r"`\1`", obj.docstring.value)
