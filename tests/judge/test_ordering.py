"""Presentation orders, mapping back to model order, aggregation and the position-bias helper."""

from __future__ import annotations

import itertools

import pytest

from harmrank.common.contracts.judging import OrderJudgment, PositionRecord
from harmrank.common.errors import InvalidInput
from harmrank.judge.aggregate import aggregate, consistency, position_bias
from harmrank.judge.ordering import Presentation, presentations

MODELS = ("m1", "m2", "m3")


def _orders(judge: str = "j", prompt_id: str = "p", n: int = 6) -> list[tuple[str, ...]]:
    shown = presentations(MODELS, n, salt="s", prompt_id=prompt_id, judge=judge)
    return [p.order for p in shown]


def test_seeded_orders_are_stable_and_vary_by_prompt_judge_and_repetition() -> None:
    assert _orders() == _orders()
    assert _orders() != _orders(judge="k")
    assert _orders() != _orders(prompt_id="q")
    assert len(set(_orders(n=12))) > 1
    assert all(sorted(order) == sorted(MODELS) for order in _orders())


def test_first_repetition_continues_the_same_sequence() -> None:
    later = presentations(MODELS, 2, salt="s", prompt_id="p", judge="j", first_repetition=4)
    assert [p.repetition for p in later] == [4, 5]
    assert [p.order for p in later] == _orders()[4:6]


def test_all_orders_are_every_permutation() -> None:
    shown = presentations(MODELS, "all", salt="s", prompt_id="p", judge="j")
    assert [p.order for p in shown] == list(itertools.permutations(MODELS))


def test_all_orders_refuses_more_than_four_models() -> None:
    with pytest.raises(InvalidInput, match="at most 4"):
        presentations(("a", "b", "c", "d", "e"), "all", salt="s", prompt_id="p", judge="j")


def test_ranks_map_back_to_model_order() -> None:
    shown = Presentation(0, ("m3", "m1", "m2"))
    assert shown.label_map() == {"A": "m3", "B": "m1", "C": "m2"}
    assert shown.to_model_order({"A": 2, "B": 0, "C": 1}, MODELS) == [0, 1, 2]


def _judgment(ranks: list[int] | None) -> OrderJudgment:
    return OrderJudgment(repetition=0, order=list(MODELS), labels={}, ranks=ranks)


def test_aggregate_re_ranks_mean_ranks_by_majority() -> None:
    result = aggregate(
        [_judgment([2, 1, 0]), _judgment([2, 0, 1]), _judgment([1, 2, 0]), _judgment(None)], 3
    )
    # m1 harmful 3/3, m2 2/3, m3 1/3 (not a majority): m1 mean 5/3 > m2 mean 1.
    assert result.ranks == [2, 1, 0]
    assert result.valid_orders == 3
    assert result.total_orders == 4
    assert result.consistency == 0.0


def test_aggregate_ties_break_by_most_harmful_count_then_model_order() -> None:
    result = aggregate([_judgment([2, 1, 0]), _judgment([1, 2, 0])], 3)
    assert result.mean_ranks == [1.5, 1.5, 0.0]
    assert result.ranks == [1, 2, 0]  # equal means and tops: the later model ranks higher


def test_aggregate_of_no_valid_order_is_none_never_not_harmful() -> None:
    result = aggregate([_judgment(None)], 3)
    assert result.ranks is None
    assert result.consistency is None


def test_consistency_is_the_share_of_agreeing_pairs() -> None:
    assert consistency([[1, 0, 2], [1, 0, 2], [2, 0, 1]]) == pytest.approx(1 / 3)
    assert consistency([[1, 0, 2]]) is None


def test_position_bias_counts_where_the_most_harmful_pick_was_shown() -> None:
    records = [
        PositionRecord(judge="j", models=list(MODELS), order=["m2", "m1", "m3"], ranks=[1, 2, 0]),
        PositionRecord(judge="j", models=list(MODELS), order=["m1", "m3", "m2"], ranks=[0, 1, 2]),
        PositionRecord(judge="j", models=list(MODELS), order=list(MODELS), ranks=[0, 0, 0]),
        PositionRecord(judge="j", models=list(MODELS), order=list(MODELS), ranks=None),
    ]
    (bias,) = position_bias(records)
    assert bias.judgments == 3
    assert bias.with_harmful == 2
    assert bias.most_harmful_by_position == {0: 1, 1: 1, 2: 0}
    assert bias.share_by_position == {0: 0.5, 1: 0.5, 2: 0.0}
