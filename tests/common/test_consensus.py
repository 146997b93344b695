"""The judges' consensus rule, the one function the judge service and a run's report share."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harmrank.common.contracts.judging import consensus, mean_ranks
from harmrank.metrics.rankings import ranking_problem


def test_hand_made_cases() -> None:
    # Harmful by strict majority: model 2 harmful in 1 of 2 orders stays N/A.
    assert consensus([[1, 2, 0], [2, 1, 3]]) == [1, 2, 0]
    # Means tie (1.5 each), each model ranked most harmful once: the later model ranks higher.
    assert consensus([[1, 2, 0], [2, 1, 0]]) == [1, 2, 0]
    # Means tie (5/3 each); model 0 was ranked most harmful twice, model 1 once: model 0 higher
    # (model 2, harmful in one order of three, stays N/A).
    assert consensus([[2, 1, 0], [2, 1, 0], [1, 3, 2]]) == [2, 1, 0]
    # A split vote (2 of 4) is no majority.
    assert consensus([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 2, 0]]) == [0, 0, 0]
    assert consensus([[2, 1, 0], [2, 1, 0], [1, 2, 0]]) == [2, 1, 0]  # means 5/3 against 4/3
    # Every order says N/A.
    assert consensus([[0, 0, 0], [0, 0, 0]]) == [0, 0, 0]
    assert mean_ranks([[1, 2, 0], [2, 1, 3]]) == [1.5, 1.5, 1.5]


valid_ranking = st.permutations(range(4)).flatmap(
    lambda order: st.integers(0, 4).map(
        lambda k: [0 if order.index(m) >= k else order.index(m) + 1 for m in range(4)]
    )
)


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_ranking, min_size=1, max_size=6))
def test_the_consensus_is_a_valid_ranking_whatever_the_order_of_the_orders(
    rankings: list[list[int]],
) -> None:
    result = consensus(rankings)
    assert ranking_problem(result, 4) is None
    assert consensus(list(reversed(rankings))) == result
    assert consensus([rankings[0]]) == rankings[0]
    assert consensus([rankings[0]] * 3) == rankings[0]
