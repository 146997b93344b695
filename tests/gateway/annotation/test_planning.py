"""Assignment balance and presentation order: pure functions."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from harmrank.gateway.annotation.planning import (
    PlanInput,
    labels,
    plan,
    presentation_order,
    queue_position,
    ranks_from_labels,
)


def loads(assigned: dict[int, list[int]]) -> list[int]:
    return [len(items) for items in assigned.values()]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.integers(1, 12), st.integers(1, 6))
def test_every_item_gets_k_annotators_and_loads_differ_by_at_most_one(
    n_items: int, n_annotators: int, k: int
) -> None:
    assigned = plan(PlanInput(list(range(n_items)), list(range(100, 100 + n_annotators)), k))
    per_item = Counter(item for items in assigned.values() for item in items)
    assert all(per_item[i] == min(k, n_annotators) for i in range(n_items))
    assert all(len(set(items)) == len(items) for items in assigned.values())
    assert max(loads(assigned)) - min(loads(assigned)) <= 1


def test_done_rankings_count_towards_k_and_towards_the_load() -> None:
    fixed = {1: {10}, 2: {10}, 3: {10}}
    assigned = plan(PlanInput([1, 2, 3, 4, 5, 6], [10, 11], 1, fixed))
    assert assigned == {10: [], 11: [4, 5, 6]}


def test_a_skipped_item_goes_to_someone_else() -> None:
    assigned = plan(PlanInput([1], [10, 11], 1, excluded={1: {10}}))
    assert assigned == {10: [], 11: [1]}
    assert plan(PlanInput([1], [10], 1, excluded={1: {10}})) == {10: []}


def test_orders_are_seeded_and_stable() -> None:
    assert presentation_order(7, 42, 3) == presentation_order(7, 42, 3)
    orders = {tuple(presentation_order(seed, 42, 3)) for seed in range(50)}
    assert len(orders) == 6  # every permutation of three occurs across annotators
    assert queue_position(7, 1) == queue_position(7, 1)
    assert sorted(presentation_order(3, 9, 5)) == [0, 1, 2, 3, 4]


def test_labels_and_their_mapping_back_to_canonical_order() -> None:
    assert labels(3) == ["A", "B", "C"]
    assert labels(28)[-2:] == ["AA", "AB"]
    # Shown order: model 2 as A, model 0 as B, model 1 as C.
    assert ranks_from_labels({"A": 1, "B": 0, "C": 2}, [2, 0, 1], ["A", "B", "C"]) == [0, 2, 1]
    assert ranks_from_labels({"A": 1, "B": 0}, [2, 0, 1], ["A", "B", "C"]) is None
