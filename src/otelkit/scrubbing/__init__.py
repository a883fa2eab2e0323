"""Scrubbing: secrets and personal data are replaced before telemetry leaves the process.

On by default in ``configure()`` (``scrubbing=False`` or ``OTELKIT_SCRUBBING=off`` turns it
off; ``ScrubbingOptions`` adds patterns and keys); on a pipeline of your own,
``ScrubbingLogRecordProcessor`` and ``ScrubbingSpanProcessor`` wrap the exporting processors.
See ``docs/scrubbing.md``.
"""

from otelkit.scrubbing._options import ScrubbingOptions, ScrubMatch
from otelkit.scrubbing._processors import ScrubbingLogRecordProcessor, ScrubbingSpanProcessor
from otelkit.scrubbing._scrubber import SCRUBBED_ATTRIBUTE

__all__ = [
    "SCRUBBED_ATTRIBUTE",
    "ScrubMatch",
    "ScrubbingLogRecordProcessor",
    "ScrubbingOptions",
    "ScrubbingSpanProcessor",
]
