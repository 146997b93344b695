"""Position bias: the rank given to each position, and the two tests of no position effect."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy.stats import chi2_contingency, friedmanchisquare

from harmrank.metrics.chance import all_rankings
from harmrank.metrics.position import (
    RANDOMISED_UP_TO,
    Presented,
    fixed_order,
    friedman,
    positions_of,
    rank_table,
    seeded_orders,
)
from harmrank.metrics.rankings import AnnotatorRankings

IntArray = npt.NDArray[np.int64]
MODELS = ("a", "b", "c")
VALID = np.vstack([all_rankings(3, k) for k in range(4)])


def build(name: str, rows: IntArray) -> AnnotatorRankings:
    return AnnotatorRankings.build(name, MODELS, {f"p{i}": tuple(r) for i, r in enumerate(rows)})


def test_rank_table_counts_by_hand() -> None:
    ranks = np.array([[1, 2, 0], [0, 1, 2]])
    positions = np.array([[2, 0, 1], [0, 1, 2]])  # prompt 0 shown as b, c, a
    table = rank_table(ranks, positions)
    # position 0: rank 2 (b on prompt 0) and rank 0 (a on prompt 1)
    assert table.tolist() == [[1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0]]


def _seeded(effect: bool, seed: int, n: int = 400) -> Presented:
    rng = np.random.default_rng(seed)
    positions = np.array([rng.permutation(3) for _ in range(n)])
    ranks = VALID[rng.integers(len(VALID), size=n)]
    if effect:  # the judge tops whatever was shown last, two times in three
        for i in np.flatnonzero(rng.random(n) < 2 / 3):
            harmful = np.flatnonzero(ranks[i] > 0)
            if len(harmful) > 1:
                last = harmful[np.argmax(positions[i, harmful])]
                top = harmful[np.argmax(ranks[i, harmful])]
                ranks[i, [last, top]] = ranks[i, [top, last]]
    return Presented("judge", ranks, positions, n)


def test_seeded_orders_find_an_effect_only_where_there_is_one() -> None:
    result = seeded_orders(_seeded(effect=False, seed=1), seed=0)
    assert not result.detected
    assert np.array(result.counts).sum() == 3 * 400
    assert result.n == 400
    assert "400 rankings of 400 prompts" in result.detail
    assert "2000 times (seed 0)" in result.test
    assert seeded_orders(_seeded(effect=True, seed=1), seed=0).detected


def test_the_statistic_is_friedmans_computed_by_scipy() -> None:
    """Independent computation: scipy's tie-corrected Friedman test, with the rank shown at
    each position as the treatments (N/A = 0 ties within a ranking)."""
    presented = _seeded(effect=True, seed=3, n=60)
    shown = np.zeros_like(presented.ranks)
    np.put_along_axis(shown, presented.positions, presented.ranks, axis=1)
    expected = friedmanchisquare(*shown.T).statistic
    assert friedman(presented.ranks, presented.positions) == pytest.approx(expected)


def test_many_rankings_use_friedmans_chi_square_approximation() -> None:
    presented = _seeded(effect=True, seed=4, n=RANDOMISED_UP_TO + 1)
    shown = np.zeros_like(presented.ranks)
    np.put_along_axis(shown, presented.positions, presented.ranks, axis=1)
    result = seeded_orders(presented, seed=0)
    assert result.p_value == pytest.approx(friedmanchisquare(*shown.T).pvalue)
    assert "chi-square approximation with 2 degrees of freedom" in result.test


def test_by_hand_two_rankings_of_two_models() -> None:
    """m = 2, n = 2, no ties: position A got the higher rank both times. Rank sums (A, B) =
    (4, 2): 12 / (2*2*3) * (16 + 4) - 3*2*3 = 2. Under re-drawing, each ranking puts its 2 on
    A with chance 1/2: the statistic reaches 2 when both agree, with chance 1/2."""
    ranks = np.array([[2, 1], [1, 2]])
    positions = np.array([[0, 1], [1, 0]])  # the rank-2 response was shown first both times
    result = seeded_orders(Presented("j", ranks, positions, 1), seed=5, permutations=4000)
    assert result.statistic == pytest.approx(2.0)
    assert result.p_value == pytest.approx(0.5, abs=0.03)
    assert result.counts == ((0, 0, 2), (0, 2, 0))


def test_the_randomisation_test_holds_its_level_where_chi_square_does_not() -> None:
    """Under no position effect (orders drawn at random, ranks by model), over 300 simulated
    runs of 150 complete rankings: the randomisation test rejects about 5% of the time; the
    chi-square test of the position x rank table, which treats the cells as independent,
    rejects far more often (its statistic is inflated by m / (m - 1) = 1.5 here)."""
    rng = np.random.default_rng(11)
    perms = VALID[(VALID > 0).all(axis=1)]
    ours, chi_square = 0, 0
    for _ in range(300):
        positions = np.array([rng.permutation(3) for _ in range(150)])
        ranks = perms[rng.choice(len(perms), size=150, p=[0.4, 0.2, 0.1, 0.1, 0.1, 0.1])]
        presented = Presented("j", ranks, positions, 150)
        ours += seeded_orders(presented, seed=int(rng.integers(1 << 30)), permutations=400).detected
        chi_square += chi2_contingency(rank_table(ranks, positions)[:, 1:]).pvalue < 0.05
    assert ours / 300 < 0.09
    assert chi_square / 300 > 0.12


def test_positions_of_an_order_shown() -> None:
    assert positions_of(["c", "a", "b"], MODELS) == [1, 2, 0]
    with pytest.raises(ValueError, match="not the models"):
        positions_of(["c", "a"], MODELS)


def test_fixed_order_uses_the_reference_as_control() -> None:
    reference = build("human", np.array([[1, 2, 3], [3, 2, 1], [2, 1, 0], [1, 2, 0]] * 10))
    same = fixed_order(build("judge", reference.ranks), reference)
    assert (same.p_value, same.detected) == (1.0, False)
    # the judge always tops the later response: on prompts (3,2,1) and (2,1,0) it disagrees
    judge = build("judge", np.array([[1, 2, 3], [1, 2, 3], [1, 2, 0], [1, 2, 0]] * 10))
    result = fixed_order(judge, reference)
    # (3,2,1) -> (1,2,3): 3 pairs reversed, each later-on-top; (2,1,0) -> (1,2,0): 1 pair
    assert "later response on top 40 times and the earlier 0 times" in result.detail
    assert result.n == 40
    assert result.detected
    assert result.counts[2] == (20, 0, 0, 20)  # position C: N/A 20 times, rank 3 20 times
