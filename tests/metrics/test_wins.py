"""Pairwise wins, win rates, bootstrap intervals and Bradley–Terry (least harm: lower rank wins)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from harmrank.common.errors import InvalidInput
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.wins import (
    bootstrap_win_rates,
    bradley_terry,
    category_subsets,
    pairwise_wins,
    wins_by_category,
)

MODELS = ("A", "B", "C")
# Hand case. Ranks per prompt in (A, B, C) order; lower rank = less harm = win.
#   p1 (0,1,2): A>B, A>C, B>C
#   p2 (2,1,0): B>A, C>A, C>B
#   p3 (0,0,1): A=B (both N/A), A>C, B>C
#   p4 (3,1,2): B>A, C>A, B>C
# wins[A,B] = p1 = 1     wins[B,A] = p2,p4 = 2     ties[A,B] = p3 = 1   (1 + 2 + 1 = 4)
# wins[A,C] = p1,p3 = 2  wins[C,A] = p2,p4 = 2     ties[A,C] = 0
# wins[B,C] = p1,p3,p4 = 3  wins[C,B] = p2 = 1     ties[B,C] = 0
HAND_ROWS: dict[str, Sequence[int]] = {
    "p1": [0, 1, 2],
    "p2": [2, 1, 0],
    "p3": [0, 0, 1],
    "p4": [3, 1, 2],
}
HAND_CATS: dict[str, str | None] = {"p1": "x", "p2": "x", "p3": "y", "p4": None}


def hand() -> AnnotatorRankings:
    return AnnotatorRankings.build("ann", MODELS, HAND_ROWS, HAND_CATS)


@st.composite
def rankings(
    draw: st.DrawFn, *, min_prompts: int = 0, max_prompts: int = 25, complete: bool = False
) -> AnnotatorRankings:
    """Valid rankings: per prompt, k random models get 1..k in random order, the rest N/A."""
    m = draw(st.integers(2, 5))
    n = draw(st.integers(min_prompts, max_prompts))
    rows: dict[str, Sequence[int]] = {}
    for p in range(n):
        order = draw(st.permutations(range(m)))
        k = m if complete else draw(st.integers(0, m))
        ranks = [0] * m
        for rank, model in enumerate(order[:k], start=1):
            ranks[model] = rank
        rows[f"p{p}"] = ranks
    cats = {p: draw(st.sampled_from(["x", "y", None])) for p in rows}
    return AnnotatorRankings.build("ann", [f"m{j}" for j in range(m)], rows, cats)


def loop_counts(r: AnnotatorRankings) -> tuple[list[list[int]], list[list[int]]]:
    """Independent reimplementation: plain loops, 'equal ranks tie', diagonal left at 0."""
    m = len(r.models)
    wins = [[0] * m for _ in range(m)]
    ties = [[0] * m for _ in range(m)]
    for row in r.ranks.tolist():
        for i in range(m):
            for j in range(m):
                if i != j and row[i] < row[j]:
                    wins[i][j] += 1
                elif i != j and row[i] == row[j]:
                    ties[i][j] += 1
    return wins, ties


def loop_rate(w: float, lo: float) -> float:
    return w / (w + lo) if w + lo > 0 else math.nan


# --- hand-computed ---------------------------------------------------------------------------


def test_hand_counts() -> None:
    result = pairwise_wins(hand())
    assert result.wins.tolist() == [[0, 1, 2], [2, 0, 3], [2, 1, 0]]
    assert result.ties.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    assert result.losses.tolist() == [[0, 2, 2], [1, 0, 1], [2, 3, 0]]
    # net: A = (1+2)-(2+2) = -1, B = (2+3)-(1+1) = 3, C = (2+1)-(2+3) = -2
    assert result.net_wins.tolist() == [-1, 3, -2]
    assert result.n_prompts == 4
    assert "lower rank wins" in str(result.params["convention"])


def test_hand_rates() -> None:
    result = pairwise_wins(hand())
    # excluding ties: A/B = 1/(1+2), A/C = 2/(2+2), B/C = 3/(3+1)
    expected = [[math.nan, 1 / 3, 1 / 2], [2 / 3, math.nan, 3 / 4], [1 / 2, 1 / 4, math.nan]]
    np.testing.assert_allclose(result.win_rate_excluding_ties, expected)
    # ties as half: A/B = (1 + 1/2)/4 = 0.375, B/A = (2 + 1/2)/4 = 0.625, B/C = 3/4
    half = [[math.nan, 0.375, 0.5], [0.625, math.nan, 0.75], [0.5, 0.25, math.nan]]
    np.testing.assert_allclose(result.win_rate_ties_half, half)


def test_hand_categories() -> None:
    by_cat = wins_by_category(hand())
    assert list(by_cat) == ["x", "y"]  # p4 has no category and is skipped
    # x = p1, p2: wins[A,B] = p1, wins[B,A] = p2, wins[C,B] = p2, wins[B,C] = p1
    assert by_cat["x"].wins.tolist() == [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    assert by_cat["x"].category == "x"
    # y = p3 (0,0,1): A=B tie, A>C, B>C
    assert by_cat["y"].wins.tolist() == [[0, 0, 1], [0, 0, 1], [0, 0, 0]]
    assert by_cat["y"].ties[0, 1] == 1
    assert by_cat["y"].n_prompts == 1
    assert category_subsets(hand())["y"].prompts == ("p3",)


def test_categories_required() -> None:
    bare = AnnotatorRankings.build("ann", MODELS, HAND_ROWS)
    with pytest.raises(InvalidInput):
        wins_by_category(bare)


def test_undefined_rate_is_nan() -> None:
    # both N/A on every prompt: never decisive, so wins/(wins+losses) is undefined, ties-half 0.5
    r = AnnotatorRankings.build("ann", ("A", "B"), {"p1": [0, 0], "p2": [0, 0]})
    result = pairwise_wins(r)
    assert np.isnan(result.win_rate_excluding_ties).all()
    assert result.win_rate_ties_half[0, 1] == 0.5


def test_bradley_terry_two_models_hand() -> None:
    # A wins 3 prompts, B wins 1. With prior 0.5: w_AB = 3.5, w_BA = 1.5, so the MLE has
    # s_A / (s_A + s_B) = 3.5 / 5 = 0.7, and strengths sum to 1: (0.7, 0.3).
    rows: dict[str, Sequence[int]] = {"p1": [0, 1], "p2": [1, 2], "p3": [0, 1], "p4": [2, 1]}
    bt = bradley_terry(AnnotatorRankings.build("ann", ("A", "B"), rows))
    np.testing.assert_allclose(bt.strengths, [0.7, 0.3], atol=1e-8)
    assert bt.converged
    assert bt.params["ties"] == "excluded"


def test_bradley_terry_ties_half_hand() -> None:
    # one A win, one tie: ties split gives w_AB = 1 + 0.5 + 0.5 = 2, w_BA = 0 + 0.5 + 0.5 = 1
    # so s_A = 2/3; excluding ties gives w_AB = 1.5, w_BA = 0.5, s_A = 0.75
    r = AnnotatorRankings.build("ann", ("A", "B"), {"p1": [0, 1], "p2": [0, 0]})
    np.testing.assert_allclose(bradley_terry(r, ties="half").strengths, [2 / 3, 1 / 3])
    np.testing.assert_allclose(bradley_terry(r).strengths, [0.75, 0.25])


def test_bradley_terry_dominance() -> None:
    # A always N/A, B always rank 1, C always rank 2: A beats both, B beats C, every prompt.
    # A never loses and C never wins; the prior keeps both finite.
    rows: dict[str, Sequence[int]] = {f"p{i}": [0, 1, 2] for i in range(20)}
    r = AnnotatorRankings.build("ann", MODELS, rows)
    bt = bradley_terry(r)
    assert bt.converged
    assert np.all(np.isfinite(bt.strengths))
    assert np.all(bt.strengths > 0)
    assert bt.strengths[0] > bt.strengths[1] > bt.strengths[2]
    assert pairwise_wins(r).net_wins.tolist() == [40, 0, -40]
    assert bt.strengths.sum() == pytest.approx(1.0)


def test_bradley_terry_rejects_bad_prior() -> None:
    with pytest.raises(InvalidInput):
        bradley_terry(hand(), prior=0.0)


def test_bootstrap_reproducible_and_contains_point() -> None:
    a = bootstrap_win_rates(hand(), n_resamples=500, seed=7)
    b = bootstrap_win_rates(hand(), n_resamples=500, seed=7)
    np.testing.assert_array_equal(a.lower_excluding_ties, b.lower_excluding_ties)
    np.testing.assert_array_equal(a.upper_ties_half, b.upper_ties_half)
    off = ~np.eye(3, dtype=bool)
    assert np.all(a.lower_ties_half[off] <= a.point_ties_half[off])
    assert np.all(a.point_ties_half[off] <= a.upper_ties_half[off])
    assert a.params["seed"] == 7
    assert a.params["n_resamples"] == 500


def test_bootstrap_no_prompts() -> None:
    empty = AnnotatorRankings.build("ann", MODELS, {})
    with pytest.raises(InvalidInput):
        bootstrap_win_rates(empty)


# --- independent reimplementation on random data --------------------------------------------


@given(rankings())
def test_counts_match_loops(r: AnnotatorRankings) -> None:
    wins, ties = loop_counts(r)
    result = pairwise_wins(r)
    assert result.wins.tolist() == wins
    assert result.ties.tolist() == ties
    m = len(r.models)
    for i in range(m):
        for j in range(m):
            expected = loop_rate(wins[i][j], wins[j][i]) if i != j else math.nan
            got = float(result.win_rate_excluding_ties[i, j])
            assert got == pytest.approx(expected, nan_ok=True)


@given(rankings(min_prompts=1, max_prompts=12), st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_bootstrap_matches_loop(r: AnnotatorRankings, seed: int) -> None:
    """Same multinomial draws, then every resample recounted with plain loops."""
    n, n_resamples = len(r.prompts), 40
    weights = np.random.default_rng(seed).multinomial(n, [1.0 / n] * n, size=n_resamples)
    got = bootstrap_win_rates(r, n_resamples=n_resamples, confidence=0.9, seed=seed)
    m, rows = len(r.models), r.ranks.tolist()
    for i, j in ((i, j) for i in range(m) for j in range(m) if i != j):
        excl, half = [], []
        for w in weights.tolist():
            win = sum(c for c, row in zip(w, rows, strict=True) if row[i] < row[j])
            loss = sum(c for c, row in zip(w, rows, strict=True) if row[j] < row[i])
            tie = sum(c for c, row in zip(w, rows, strict=True) if row[i] == row[j])
            excl.append(loop_rate(win, loss))
            half.append((win + tie / 2) / n)
        lo, hi = np.quantile(half, [0.05, 0.95])
        assert got.lower_ties_half[i, j] == pytest.approx(lo)
        assert got.upper_ties_half[i, j] == pytest.approx(hi)
        defined = [x for x in excl if not math.isnan(x)]
        assert got.n_defined[i, j] == len(defined)
        if defined:
            lo, hi = np.quantile(defined, [0.05, 0.95])
            assert got.lower_excluding_ties[i, j] == pytest.approx(lo)
            assert got.upper_excluding_ties[i, j] == pytest.approx(hi)


def neg_log_likelihood(theta: npt.NDArray[np.float64], w: npt.NDArray[np.float64]) -> float:
    """-sum_ij w_ij log(s_i / (s_i + s_j)) with s = exp(theta)."""
    diff = theta[:, None] - theta[None, :]
    return float(np.sum(w * np.logaddexp(0.0, -diff)))


@given(rankings(min_prompts=1))
@settings(max_examples=40, deadline=None)
def test_bradley_terry_matches_scipy(r: AnnotatorRankings) -> None:
    wins, _ = loop_counts(r)
    w = np.array(wins, dtype=float) + 0.5
    np.fill_diagonal(w, 0.0)
    fit = minimize(neg_log_likelihood, np.zeros(len(r.models)), args=(w,), method="BFGS")
    expected = np.exp(fit.x) / np.exp(fit.x).sum()
    bt = bradley_terry(r)
    assert bt.converged
    np.testing.assert_allclose(bt.strengths, expected, atol=1e-4)


# --- properties --------------------------------------------------------------------------------


@given(rankings())
def test_wins_losses_ties_add_up(r: AnnotatorRankings) -> None:
    result = pairwise_wins(r)
    total = result.wins + result.wins.T + result.ties
    off = ~np.eye(len(r.models), dtype=bool)
    assert np.all(total[off] == len(r.prompts))


@given(rankings())
def test_win_rates_complement(r: AnnotatorRankings) -> None:
    result = pairwise_wins(r)
    excl = result.win_rate_excluding_ties
    defined = ~np.isnan(excl)
    np.testing.assert_allclose((excl + excl.T)[defined], 1.0)
    half = result.win_rate_ties_half
    np.testing.assert_allclose((half + half.T)[~np.isnan(half)], 1.0)


@given(rankings(min_prompts=1, complete=True))
@settings(deadline=None)
def test_bradley_terry_order_follows_net_wins(r: AnnotatorRankings) -> None:
    """Complete rankings are a balanced round robin, where BT order equals the win order."""
    net = pairwise_wins(r).net_wins
    s = bradley_terry(r).strengths
    m = len(r.models)
    for i in range(m):
        for j in range(m):
            if net[i] > net[j]:
                assert s[i] > s[j]


@given(rankings(min_prompts=10, max_prompts=40), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_bootstrap_contains_point_and_reproducible(r: AnnotatorRankings, seed: int) -> None:
    a = bootstrap_win_rates(r, n_resamples=300, seed=seed)
    b = bootstrap_win_rates(r, n_resamples=300, seed=seed)
    np.testing.assert_array_equal(a.lower_excluding_ties, b.lower_excluding_ties)
    np.testing.assert_array_equal(a.upper_ties_half, b.upper_ties_half)
    for point, lo, hi in (
        (a.point_ties_half, a.lower_ties_half, a.upper_ties_half),
        (a.point_excluding_ties, a.lower_excluding_ties, a.upper_excluding_ties),
    ):
        ok = ~np.isnan(point)
        assert np.all(lo[ok] <= point[ok] + 1e-12)
        assert np.all(point[ok] <= hi[ok] + 1e-12)


@given(rankings())
def test_categories_partition_the_prompts(r: AnnotatorRankings) -> None:
    by_cat = wins_by_category(r)
    assert r.categories is not None
    categorised = sum(c is not None for c in r.categories)
    assert sum(part.n_prompts for part in by_cat.values()) == categorised
    total = sum((part.wins for part in by_cat.values()), np.zeros((len(r.models),) * 2))
    assert np.all(total <= pairwise_wins(r).wins)
