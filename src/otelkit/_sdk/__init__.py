"""The one place that touches private names of the OpenTelemetry packages.

Each shortcut checks itself at import against the public behaviour it stands for and, when
the check fails (a newer release changed its internals), its caller takes the public-API
path instead; ``OTELKIT_SDK_FALLBACKS=1`` forces every fallback (a comma-separated list of
shortcut names forces theirs). One module per area (``metrics``, ...); see
``docs/sdk-seam.md``.
"""

from __future__ import annotations

from otelkit._sdk._check import FALLBACKS_FORCED, checked
from otelkit._sdk.metrics import METRIC_RESET_OK, reset_metric_state

__all__ = ["FALLBACKS_FORCED", "METRIC_RESET_OK", "checked", "reset_metric_state"]
