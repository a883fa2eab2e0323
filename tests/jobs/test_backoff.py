"""Backoff: bounded by the jitter band, and never shrinking when factor × (1 − jitter) ≥ 1."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from otelkit.jobs import Backoff


@given(
    base=st.floats(0.001, 100),
    factor=st.floats(1, 5),
    jitter=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
def test_delays_stay_in_the_jitter_band_under_the_cap(base, factor, jitter, seed) -> None:
    backoff = Backoff(base=base, factor=factor, cap=base * 50, jitter=jitter)
    rng = random.Random(seed)
    for attempt in range(1, 12):
        raw = min(backoff.cap, base * factor ** (attempt - 1))
        assert raw * (1 - jitter) - 1e-9 <= backoff.delay(attempt, rng) <= raw + 1e-9


@given(base=st.floats(0.001, 100), jitter=st.floats(0, 0.5), seed=st.integers(0, 2**32))
def test_delays_never_shrink_when_growth_outpaces_jitter(base, jitter, seed) -> None:
    backoff = Backoff(base=base, factor=2.0, cap=base * 1000, jitter=jitter)
    rng = random.Random(seed)
    delays = [backoff.delay(attempt, rng) for attempt in range(1, 10)]
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(delays))
