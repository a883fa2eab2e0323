"""Decayed popularity: halving, ranking by recency and frequency, coldest-first eviction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otelkit.preload._scores import Popularity


def popularity(max_keys: int = 100, half_life: float = 60.0, max_related: int = 4) -> Popularity:
    return Popularity(half_life=half_life, max_keys=max_keys, max_related=max_related)


def test_score_halves_after_one_half_life() -> None:
    pop = popularity(half_life=30.0)
    pop.touch("k", now=100.0)
    pop.touch("k", now=100.0)
    assert pop.score("k", 100.0) == pytest.approx(2.0)
    assert pop.score("k", 130.0) == pytest.approx(1.0)
    assert pop.score("k", 160.0) == pytest.approx(0.5)


def test_an_access_adds_one_to_the_decayed_score() -> None:
    pop = popularity(half_life=10.0)
    pop.touch("k", now=0.0)
    pop.touch("k", now=10.0)  # 0.5 left of the first access, plus 1
    assert pop.score("k", 10.0) == pytest.approx(1.5)


def test_recency_ranks_a_fresh_access_above_an_old_one() -> None:
    pop = popularity(half_life=60.0)
    pop.touch("old", now=0.0)
    pop.touch("new", now=60.0)
    assert [key for key, _ in pop.top(2, now=60.0)] == ["new", "old"]


def test_frequency_outweighs_recency_once_it_adds_up() -> None:
    pop = popularity(half_life=60.0)
    for _ in range(4):
        pop.touch("frequent", now=0.0)  # worth 2.0 one half-life later
    pop.touch("recent", now=60.0)  # worth 1.0
    pop.touch("rare", now=0.0)  # worth 0.5
    ranking = pop.top(3, now=60.0)
    assert [key for key, _ in ranking] == ["frequent", "recent", "rare"]
    assert [score for _, score in ranking] == pytest.approx([2.0, 1.0, 0.5])


def test_the_ranking_does_not_change_while_nobody_reads() -> None:
    pop = popularity(half_life=5.0)
    pop.touch("a", now=0.0)
    pop.touch("a", now=0.0)
    pop.touch("b", now=3.0)
    first = [key for key, _ in pop.top(2, now=3.0)]
    later = [key for key, _ in pop.top(2, now=3000.0)]
    assert first == later == ["a", "b"]


def test_full_tracker_evicts_the_coldest_key() -> None:
    pop = popularity(max_keys=3, half_life=10.0)
    pop.touch("a", now=0.0)
    pop.touch("a", now=0.0)
    pop.touch("b", now=0.0)
    pop.touch("c", now=5.0)
    pop.touch("b", now=5.0)  # b is now hotter than a single-access c
    _, evicted = pop.touch("d", now=6.0)
    assert evicted == "c"
    assert len(pop) == 3
    assert "c" not in pop
    assert {"a", "b", "d"} == set(pop)


def test_discarded_keys_are_neither_tracked_nor_evicted_later() -> None:
    pop = popularity(max_keys=2)
    pop.touch("a", now=0.0)
    pop.discard("a")
    pop.touch("b", now=1.0)
    pop.touch("a", now=2.0)
    _, evicted = pop.touch("c", now=3.0)
    assert evicted == "b"
    assert pop.score("a", 3.0) > 0


def test_related_keys_are_bounded_and_keep_the_newest() -> None:
    pop = popularity(max_related=2)
    entry, _ = pop.touch("page", now=0.0)
    for other in ("x", "y", "page", "z"):
        pop.relate(entry, other)
    assert list(entry.related) == ["y", "z"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.floats(0.0, 20.0, allow_nan=False)),
        min_size=1,
        max_size=120,
    ),
    st.integers(1, 8),
)
def test_eviction_always_picks_a_key_with_the_lowest_score(
    accesses: list[tuple[int, float]], bound: int
) -> None:
    pop = popularity(max_keys=bound, half_life=7.0)
    now = 0.0
    for key_id, step in accesses:
        now += step
        key = f"k{key_id}"
        before = {k: pop.score(k, now) for k in pop}
        _, evicted = pop.touch(key, now)
        assert len(pop) <= bound
        if evicted is not None:
            assert key not in before
            assert before[evicted] <= min(before.values()) * (1 + 1e-9)
