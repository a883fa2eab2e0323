"""Tail sampling of local trace trees: every failed or slow tree kept whole, a share of
the rest (``configure(sampling=SamplingOptions(...))``; on a pipeline of your own,
``TailSampler(options)`` wraps the exporting processors; see ``docs/sampling.md``)."""

from otelkit.sampling._options import SamplingOptions
from otelkit.sampling._sampler import TailSampler

__all__ = ["SamplingOptions", "TailSampler"]
