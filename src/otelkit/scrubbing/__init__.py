"""Scrubbing: secrets and personal data are replaced before telemetry leaves the process.

On by default in ``configure()`` (``scrubbing=False`` or ``OTELKIT_SCRUBBING=off`` turns it
off); see ``docs/scrubbing.md``.
"""

from otelkit.scrubbing._options import ScrubbingOptions, ScrubMatch
from otelkit.scrubbing._processors import ScrubbingLogRecordProcessor, ScrubbingSpanProcessor
from otelkit.scrubbing._rules import DEFAULT_KEY_PATTERNS, DEFAULT_VALUE_RULES, SENSITIVE_KEY
from otelkit.scrubbing._scrubber import SCRUBBED_ATTRIBUTE, Scrubber

__all__ = [
    "DEFAULT_KEY_PATTERNS",
    "DEFAULT_VALUE_RULES",
    "SCRUBBED_ATTRIBUTE",
    "SENSITIVE_KEY",
    "ScrubMatch",
    "Scrubber",
    "ScrubbingLogRecordProcessor",
    "ScrubbingOptions",
    "ScrubbingSpanProcessor",
]
