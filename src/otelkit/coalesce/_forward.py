"""Forwarding to the SDK's batch processors without the per-record overhead of their hooks.

The shortcuts, their self-checks and their public fallbacks live in the seam,
``otelkit._sdk.coalesce``; this module hands them on (``otelkit._batch`` uses
:func:`queue_readable_copy`). ``tests/coalesce/test_forward.py`` checks the equivalence.
"""

from __future__ import annotations

from otelkit._sdk.coalesce import batch_span_queue, log_forwarder, queue_readable_copy

__all__ = ["batch_span_queue", "log_forwarder", "queue_readable_copy"]
