"""The headline RBO (over the known depth) cannot reward disagreement about which is harmful."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmrank.common.errors import InvalidInput
from harmrank.metrics.chance import all_rankings
from harmrank.metrics.contributions import harmful_items
from harmrank.metrics.rbo import rbo
from harmrank.metrics.rbo_known import rbo_known_batch


def known(s: list[int], t: list[int], m: int, p: float = 0.9) -> float:
    """RBO_known of two harmful lists of model indices, most harmful first."""
    pad = np.full((2, m), -1, dtype=np.int64)
    pad[0, : len(s)], pad[1, : len(t)] = s, t
    return float(rbo_known_batch(pad[:1], pad[1:], p)[0])


def test_a_prefix_no_longer_scores_one() -> None:
    # The case: ["mistral"] against ["mistral", "mpt", "stablelm"].
    assert rbo(["mistral"], ["mistral", "mpt", "stablelm"], p=0.9).rbo == 1.0
    # by hand: A_1 = 1, A_2 = 1/2, A_3 = 1/3; weights 1, .9, .81 over 2.71
    expected = (1 + 0.9 / 2 + 0.81 / 3) / 2.71
    assert known([0], [0, 1, 2], 3) == pytest.approx(expected, abs=1e-12)
    assert expected < 0.64


def test_hand_computed_values() -> None:
    # [a, b] against [b, a] of three models: A = 0, 1, 1.
    assert known([0, 1], [1, 0], 3) == pytest.approx((0.9 + 0.81) / 2.71, abs=1e-12)
    # [a, b, c] against [c, b, a]: A = 0, 1/2, 1.
    assert known([0, 1, 2], [2, 1, 0], 3) == pytest.approx((0.45 + 0.81) / 2.71, abs=1e-12)
    assert known([], [], 3) == 1.0  # both say nothing is harmful
    assert known([], [1], 3) == 0.0  # exactly one empty
    assert known([0], [1], 3) == 0.0  # disjoint


def test_identical_rankings_score_one_and_p_is_checked() -> None:
    for k in range(5):
        rows = all_rankings(4, k)
        items = harmful_items(np.asarray(rows))
        np.testing.assert_allclose(rbo_known_batch(items, items, 0.7), 1.0)
    with pytest.raises(InvalidInput):
        known([0], [0], 3, p=1.0)


def test_below_one_whenever_harmful_sets_or_orders_differ_exhaustively() -> None:
    rows = np.vstack([all_rankings(4, k) for k in range(5)])
    x, y = (np.asarray(v) for v in zip(*itertools.product(rows, rows), strict=True))
    values = rbo_known_batch(harmful_items(x), harmful_items(y), 0.9)
    differ = ((x > 0) != (y > 0)).any(axis=1)
    assert differ.sum() > 0
    assert (values[differ] < 1.0).all()
    order_differs = (x != y).any(axis=1)
    assert (values[order_differs] < 1.0).all()
    assert (values[~order_differs] == 1.0).all()
    assert ((values >= 0.0) & (values <= 1.0)).all()


@st.composite
def ranking_pairs(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    m = draw(st.integers(1, 8))
    items = list(range(m))
    s = draw(st.permutations(items))[: draw(st.integers(0, m))]
    t = draw(st.permutations(items))[: draw(st.integers(0, m))]
    return s, t, m


@settings(max_examples=300, deadline=None)
@given(ranking_pairs(), st.floats(0.05, 0.95))
def test_property_below_one_when_the_harmful_sets_differ(
    case: tuple[list[int], list[int], int], p: float
) -> None:
    s, t, m = case
    value = known(s, t, m, p)
    assert 0.0 <= value <= 1.0 + 1e-12
    assert value == known(t, s, m, p)  # symmetric
    if set(s) != set(t) or s != t:
        assert value < 1.0
    else:
        assert value == pytest.approx(1.0)
