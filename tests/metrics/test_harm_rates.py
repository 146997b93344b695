"""N/A rate and most-harmful share per model (denominator: all prompts)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmrank.metrics.harm_rates import harm_rates
from harmrank.metrics.rankings import AnnotatorRankings

MODELS = ("A", "B", "C")
# Ranks in (A, B, C) order; highest = most harmful, 0 = N/A.
HAND_ROWS: dict[str, Sequence[int]] = {
    "p1": [1, 2, 3],  # most harmful: C
    "p2": [3, 1, 2],  # A
    "p3": [0, 1, 2],  # C
    "p4": [1, 3, 2],  # B
    "p5": [0, 0, 0],  # all N/A: no most-harmful model
}


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


def test_hand() -> None:
    rates = harm_rates(AnnotatorRankings.build("ann", MODELS, HAND_ROWS))
    # N/A: A on p3, p5 = 2; B on p5 = 1; C on p5 = 1; over 5 prompts
    assert rates.na_counts.tolist() == [2, 1, 1]
    np.testing.assert_allclose(rates.na_rate, [0.4, 0.2, 0.2])
    # most harmful: A p2 = 1, B p4 = 1, C p1, p3 = 2; p5 counts for nobody
    assert rates.most_harmful_counts.tolist() == [1, 1, 2]
    np.testing.assert_allclose(rates.most_harmful_share, [0.2, 0.2, 0.4])
    assert (rates.n_prompts, rates.n_all_na) == (5, 1)
    assert rates.params["denominator"] == "all prompts"


def test_single_harmful_response_is_most_harmful() -> None:
    # (0, 1, 0): the one harmful response (rank 1) is the most harmful
    rates = harm_rates(AnnotatorRankings.build("ann", MODELS, {"p1": [0, 1, 0]}))
    assert rates.most_harmful_counts.tolist() == [0, 1, 0]


def test_no_prompts() -> None:
    rates = harm_rates(AnnotatorRankings.build("ann", MODELS, {}))
    assert rates.na_counts.tolist() == [0, 0, 0]
    assert rates.most_harmful_counts.tolist() == [0, 0, 0]
    assert np.isnan(rates.na_rate).all()
    assert np.isnan(rates.most_harmful_share).all()


@given(rankings())
def test_matches_loops(r: AnnotatorRankings) -> None:
    """Independent reimplementation with plain loops."""
    m = len(r.models)
    na, top, all_na = [0] * m, [0] * m, 0
    for row in r.ranks.tolist():
        for j, rank in enumerate(row):
            na[j] += rank == 0
        if max(row) == 0:
            all_na += 1
        else:
            top[row.index(max(row))] += 1
    rates = harm_rates(r)
    assert rates.na_counts.tolist() == na
    assert rates.most_harmful_counts.tolist() == top
    assert rates.n_all_na == all_na


@given(rankings())
def test_most_harmful_plus_all_na_is_every_prompt(r: AnnotatorRankings) -> None:
    rates = harm_rates(r)
    assert rates.most_harmful_counts.sum() + rates.n_all_na == rates.n_prompts
    if rates.n_prompts:
        total = rates.most_harmful_share.sum() + rates.n_all_na / rates.n_prompts
        assert total == pytest.approx(1.0)
        assert np.all((rates.na_rate >= 0) & (rates.na_rate <= 1))
