"""Harm-ranking validation, normalisation and the two RBO list conventions."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmrank.metrics.rankings import (
    AnnotatorRankings,
    InvalidRanking,
    align,
    harmful_list,
    ranking_problem,
    restart_ranks,
    reverse_direction,
    tied_list,
    validate_ranking,
)

MODELS = ("mistral", "mpt", "stablelm")


def valid_rankings(m: int) -> list[tuple[int, ...]]:
    """Every valid ranking of m models, by brute force over {0..m}^m."""
    return [r for r in itertools.product(range(m + 1), repeat=m) if ranking_problem(r, m) is None]


def test_valid_ranking_count_matches_arrangements() -> None:
    # sum over k of C(m,k) * k!: 1 + 3 + 6 + 6 = 16 for three models, 65 for four.
    assert len(valid_rankings(3)) == 16
    assert len(valid_rankings(4)) == 65


@pytest.mark.parametrize(
    ("ranks", "problem"),
    [
        ((1, 1, 0), "ties are not allowed"),
        ((0, 2, 0), "harmful ranks must be 1..1 without gaps"),
        ((1, 2), "expected 3 ranks, got 2"),
        ((-1, 1, 2), "ranks must be 0 (N/A) or positive"),
    ],
)
def test_invalid_rankings_say_why_and_where(ranks: tuple[int, ...], problem: str) -> None:
    with pytest.raises(InvalidRanking) as caught:
        validate_ranking(ranks, 3, prompt="p7", annotator="group_4")
    message = str(caught.value)
    assert problem in message
    assert "'p7'" in message
    assert "'group_4'" in message
    assert str(list(ranks)) in message


@pytest.mark.parametrize(
    ("raw", "restarted"),
    [
        ((0, 3, 0), (0, 1, 0)),
        ((0, 1, 3), (0, 1, 2)),
        ((2, 3, 0), (1, 2, 0)),
        ((1, 2, 3), (1, 2, 3)),
    ],
)
def test_restart_ranks_matches_the_study_rules(
    raw: tuple[int, ...], restarted: tuple[int, ...]
) -> None:
    assert restart_ranks(raw) == restarted


@pytest.mark.parametrize(
    ("raw", "reversed_"),
    [
        ((1, 2, 3), (3, 2, 1)),
        ((1, 2, 0), (2, 1, 0)),
        ((0, 1, 0), (0, 1, 0)),
        ((0, 0, 0), (0, 0, 0)),
    ],
)
def test_reverse_direction(raw: tuple[int, ...], reversed_: tuple[int, ...]) -> None:
    assert reverse_direction(raw) == reversed_


def test_list_conventions() -> None:
    assert harmful_list((0, 2, 1), MODELS) == ["mpt", "stablelm"]
    assert tied_list((0, 2, 1), MODELS) == ["mpt", "stablelm", "mistral"]
    assert tied_list((0, 1, 0), MODELS) == ["mpt", ["mistral", "stablelm"]]
    assert harmful_list((0, 0, 0), MODELS) == []
    assert tied_list((0, 0, 0), MODELS) == [["mistral", "mpt", "stablelm"]]


@given(st.sampled_from(valid_rankings(4)))
def test_normalisations_fix_valid_rankings(ranks: tuple[int, ...]) -> None:
    assert restart_ranks(ranks) == ranks
    assert reverse_direction(reverse_direction(ranks)) == ranks
    assert ranking_problem(reverse_direction(ranks), 4) is None


def _untied(ranks: list[int]) -> bool:
    harmful = [x for x in ranks if x]
    return len(set(harmful)) == len(harmful)


@given(st.lists(st.integers(0, 6), min_size=4, max_size=4).filter(_untied))
def test_restart_makes_untied_rankings_valid(ranks: list[int]) -> None:
    fixed = restart_ranks(ranks)
    assert ranking_problem(fixed, 4) is None
    # the order among harmful responses is kept
    for i, j in itertools.permutations(range(4), 2):
        if ranks[i] and ranks[j]:
            assert (ranks[i] < ranks[j]) == (fixed[i] < fixed[j])


@given(st.sampled_from(valid_rankings(3)))
def test_tied_list_holds_every_model_once(ranks: tuple[int, ...]) -> None:
    flat = [x for el in tied_list(ranks, MODELS) for x in (el if isinstance(el, list) else [el])]
    assert sorted(flat) == sorted(MODELS)
    harmful = harmful_list(ranks, MODELS)
    assert tied_list(ranks, MODELS)[: len(harmful)] == harmful


def test_build_and_align() -> None:
    a = AnnotatorRankings.build("a", MODELS, {"p1": (1, 2, 3), "p2": (0, 0, 1), "p3": (0, 0, 0)})
    b = AnnotatorRankings.build("b", MODELS, {"p3": (1, 0, 0), "p1": (3, 2, 1)})
    prompts, ra, rb = align(a, b)
    assert prompts == ("p1", "p3")
    assert ra.tolist() == [[1, 2, 3], [0, 0, 0]]
    assert rb.tolist() == [[3, 2, 1], [1, 0, 0]]
    with pytest.raises(InvalidRanking, match="'p9'"):
        AnnotatorRankings.build("c", MODELS, {"p9": (2, 2, 0)})
