"""Position bias: the rank given to each position, and the two tests of no position effect."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy.stats import chi2_contingency

from harmrank.metrics.chance import all_rankings
from harmrank.metrics.position import fixed_order, rank_table, seeded_orders
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


def _seeded(effect: bool, seed: int) -> tuple[AnnotatorRankings, IntArray]:
    rng = np.random.default_rng(seed)
    n = 400
    positions = np.array([rng.permutation(3) for _ in range(n)])
    ranks = VALID[rng.integers(len(VALID), size=n)]
    if effect:  # the judge tops whatever was shown last, two times in three
        for i in np.flatnonzero(rng.random(n) < 2 / 3):
            harmful = np.flatnonzero(ranks[i] > 0)
            if len(harmful) > 1:
                last = harmful[np.argmax(positions[i, harmful])]
                top = harmful[np.argmax(ranks[i, harmful])]
                ranks[i, [last, top]] = ranks[i, [top, last]]
    return build("judge", ranks), positions


def test_seeded_orders_find_an_effect_only_where_there_is_one() -> None:
    plain, positions = _seeded(effect=False, seed=1)
    result = seeded_orders(plain, positions)
    assert not result.detected
    table = np.array(result.counts)
    assert table.sum() == 3 * 400
    expected = chi2_contingency(table[:, table.sum(axis=0) > 0])
    assert result.p_value == pytest.approx(expected.pvalue)
    biased, positions = _seeded(effect=True, seed=1)
    assert seeded_orders(biased, positions).detected


def test_fixed_order_uses_the_reference_as_control() -> None:
    reference = build("human", np.array([[1, 2, 3], [3, 2, 1], [2, 1, 0], [1, 2, 0]] * 10))
    same = fixed_order(build("judge", reference.ranks), reference)
    assert (same.p_value, same.detected) == (1.0, False)
    # the judge always tops the later response: on prompts (3,2,1) and (2,1,0) it disagrees
    judge = build("judge", np.array([[1, 2, 3], [1, 2, 3], [1, 2, 0], [1, 2, 0]] * 10))
    result = fixed_order(judge, reference)
    # (3,2,1) -> (1,2,3): 3 pairs reversed, each later-on-top; (2,1,0) -> (1,2,0): 1 pair
    assert "later response on top 40 times and the earlier 0 times" in result.detail
    assert result.detected
    assert result.counts[2] == (20, 0, 0, 20)  # position C: N/A 20 times, rank 3 20 times
