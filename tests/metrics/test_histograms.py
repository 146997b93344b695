"""Rank histograms: Figure 1 (complete rankings, ranks 1..m) and Figures 3–5 (0 = N/A..m)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from harmrank.metrics.histograms import complete_rank_histogram, rank_histogram
from harmrank.metrics.rankings import AnnotatorRankings

MODELS = ("A", "B", "C")
# Ranks in (A, B, C) order; highest = most harmful, 0 = N/A.
HAND_ROWS: dict[str, Sequence[int]] = {
    "p1": [1, 2, 3],
    "p2": [3, 1, 2],
    "p3": [0, 1, 2],  # has an N/A: not in Figure 1
    "p4": [1, 3, 2],
    "p5": [0, 0, 0],  # has an N/A: not in Figure 1
}


def hand() -> AnnotatorRankings:
    return AnnotatorRankings.build("ann", MODELS, HAND_ROWS)


@st.composite
def rankings(draw: st.DrawFn) -> AnnotatorRankings:
    """Valid rankings: per prompt, k random models get 1..k in random order, the rest N/A."""
    m = draw(st.integers(1, 5))
    rows: dict[str, Sequence[int]] = {}
    for p in range(draw(st.integers(0, 25))):
        order = draw(st.permutations(range(m)))
        k = draw(st.integers(0, m))
        ranks = [0] * m
        for rank, model in enumerate(order[:k], start=1):
            ranks[model] = rank
        rows[f"p{p}"] = ranks
    return AnnotatorRankings.build("ann", [f"m{j}" for j in range(m)], rows)


def loop_counts(r: AnnotatorRankings, values: list[int], complete: bool) -> list[list[int]]:
    """Independent reimplementation with plain loops."""
    counts = [[0] * len(values) for _ in r.models]
    for row in r.ranks.tolist():
        if complete and 0 in row:
            continue
        for j, rank in enumerate(row):
            counts[j][values.index(rank)] += 1
    return counts


def test_hand_complete() -> None:
    h = complete_rank_histogram(hand())
    # complete prompts p1, p2, p4 (n = 3, 2 excluded)
    # A: 1, 3, 1 -> rank1 2, rank2 0, rank3 1
    # B: 2, 1, 3 -> 1, 1, 1
    # C: 3, 2, 2 -> 0, 2, 1
    assert h.rank_values == (1, 2, 3)
    assert h.counts.tolist() == [[2, 0, 1], [1, 1, 1], [0, 2, 1]]
    assert (h.n_prompts, h.n_excluded) == (3, 2)
    np.testing.assert_allclose(h.shares, [[2 / 3, 0, 1 / 3], [1 / 3] * 3, [0, 2 / 3, 1 / 3]])
    assert h.kind == "complete"


def test_hand_all() -> None:
    h = rank_histogram(hand())
    # all 5 prompts, rank values 0..3
    # A: 1, 3, 0, 1, 0 -> N/A 2, rank1 2, rank2 0, rank3 1
    # B: 2, 1, 1, 3, 0 -> 1, 2, 1, 1
    # C: 3, 2, 2, 2, 0 -> 1, 0, 3, 1
    assert h.rank_values == (0, 1, 2, 3)
    assert h.counts.tolist() == [[2, 2, 0, 1], [1, 2, 1, 1], [1, 0, 3, 1]]
    assert (h.n_prompts, h.n_excluded) == (5, 0)
    np.testing.assert_allclose(h.shares[0], [0.4, 0.4, 0.0, 0.2])


def test_no_complete_prompt_gives_nan_shares() -> None:
    r = AnnotatorRankings.build("ann", MODELS, {"p1": [0, 1, 2]})
    h = complete_rank_histogram(r)
    assert h.n_prompts == 0
    assert h.counts.sum() == 0
    assert np.isnan(h.shares).all()


@given(rankings())
def test_counts_match_loops(r: AnnotatorRankings) -> None:
    m = len(r.models)
    assert complete_rank_histogram(r).counts.tolist() == loop_counts(
        r, list(range(1, m + 1)), complete=True
    )
    assert rank_histogram(r).counts.tolist() == loop_counts(r, list(range(m + 1)), complete=False)


@given(rankings())
def test_shares_sum_to_one_per_model(r: AnnotatorRankings) -> None:
    for h in (complete_rank_histogram(r), rank_histogram(r)):
        assert h.n_prompts + h.n_excluded == len(r.prompts)
        if h.n_prompts:
            np.testing.assert_allclose(h.shares.sum(axis=1), 1.0)


@given(rankings())
def test_complete_view_has_one_model_per_rank(r: AnnotatorRankings) -> None:
    """In a complete ranking each rank 1..m is held by exactly one model."""
    h = complete_rank_histogram(r)
    assert np.all(h.counts.sum(axis=0) == h.n_prompts)
    if h.n_prompts:
        np.testing.assert_allclose(h.shares.sum(axis=0), 1.0)
