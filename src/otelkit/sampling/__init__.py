"""Tail sampling of local trace trees: every failed or slow tree kept whole, a share of
the rest (``configure(sampling=SamplingOptions(...))``; see ``docs/sampling.md``)."""

from otelkit.sampling._options import SamplingOptions
from otelkit.sampling._sampler import (
    SamplingLogRecordProcessor,
    SamplingSpanProcessor,
    TailSampler,
    keeps_trace,
)

__all__ = [
    "SamplingLogRecordProcessor",
    "SamplingOptions",
    "SamplingSpanProcessor",
    "TailSampler",
    "keeps_trace",
]
