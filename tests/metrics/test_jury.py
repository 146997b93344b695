"""The judges as one annotator: majority harmful, mean-rank order, the stated tie rule."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmrank.common.errors import InvalidInput
from harmrank.metrics.jury import jury, jury_ranks
from harmrank.metrics.rankings import AnnotatorRankings, ranking_problem

MODELS = ("A", "B", "C")


def judge(name: str, rows: dict[str, Sequence[int]]) -> AnnotatorRankings:
    return AnnotatorRankings.build(name, MODELS, rows)


def test_hand_computed_jury() -> None:
    j1 = judge("j1", {"p1": [1, 2, 3], "p2": [0, 1, 0], "p3": [2, 1, 0], "p4": [0, 0, 0]})
    j2 = judge("j2", {"p1": [1, 3, 2], "p2": [0, 0, 0], "p3": [1, 2, 0], "p4": [1, 0, 0]})
    j3 = judge("j3", {"p1": [2, 1, 3], "p2": [1, 0, 0], "p3": [1, 2, 0], "p4": [0, 0, 1]})
    result = jury([j1, j2, j3])
    ranks = dict(zip(result.rankings.prompts, result.rankings.ranks.tolist(), strict=True))
    # p1: sums A 4, B 6, C 8 -> 1, 2, 3.
    assert ranks["p1"] == [1, 2, 3]
    # p2: every model has one harmful vote of three -> no majority -> all N/A.
    assert ranks["p2"] == [0, 0, 0]
    # p3: A and B harmful (3 votes each), sums 4 and 5 -> A 1, B 2; C N/A.
    assert ranks["p3"] == [1, 2, 0]
    assert ranks["p4"] == [0, 0, 0]
    assert result.n_ties_broken == 0
    assert result.jurors == ("j1", "j2", "j3")


def test_ties_follow_the_first_juror_then_model_order() -> None:
    # Sums tie (A 3, B 3): the first juror ranks B above A, so B is the more harmful.
    first = judge("j1", {"p": [1, 2, 0], "q": [1, 2, 0]})
    second = judge("j2", {"p": [2, 1, 0], "q": [2, 1, 0]})
    result = jury([first, second])
    assert result.rankings.ranks.tolist() == [[1, 2, 0], [1, 2, 0]]
    assert result.n_ties_broken == 2
    # Reversed jury order: the other juror decides.
    assert jury([second, first]).rankings.ranks.tolist() == [[2, 1, 0], [2, 1, 0]]
    # Sums tie and the first juror marked both N/A: the later model counts as more harmful.
    ranks = np.array([[[0, 0, 0]], [[1, 2, 0]], [[2, 1, 0]]])
    combined, ties = jury_ranks(ranks)
    assert combined.tolist() == [[1, 2, 0]]
    assert ties == 1


def test_jury_uses_only_prompts_every_juror_ranked() -> None:
    j1 = judge("j1", {"p": [1, 2, 3], "q": [0, 0, 1]})
    j2 = judge("j2", {"p": [1, 2, 3]})
    result = jury([j1, j2])
    assert result.rankings.prompts == ("p",)
    assert result.n_left_out == 1
    assert result.params()["left_out"] == 1


def test_a_jury_needs_two_judges_of_the_same_models() -> None:
    with pytest.raises(InvalidInput, match="at least two"):
        jury([judge("j1", {"p": [1, 2, 3]})])
    other = AnnotatorRankings.build("x", ("A", "B"), {"p": [1, 2]})
    with pytest.raises(InvalidInput, match="same models"):
        jury([judge("j1", {"p": [1, 2, 3]}), other])


@st.composite
def ranking(draw: st.DrawFn) -> list[int]:
    order = draw(st.permutations(range(3)))
    k = draw(st.integers(0, 3))
    ranks = [0] * 3
    for rank, model in enumerate(order[:k], start=1):
        ranks[model] = rank
    return ranks


@given(st.lists(st.lists(ranking(), min_size=1, max_size=6), min_size=2, max_size=5))
def test_the_jury_always_gives_a_valid_ranking(rows: list[list[list[int]]]) -> None:
    n_prompts = min(len(r) for r in rows)
    ranks = np.array([r[:n_prompts] for r in rows])
    combined, _ = jury_ranks(ranks)
    for prompt in range(n_prompts):
        assert ranking_problem(combined[prompt].tolist(), 3) is None
        votes = (ranks[:, prompt] != 0).sum(axis=0)
        assert ((combined[prompt] != 0) == (votes * 2 > len(rows))).all()


@given(st.lists(ranking(), min_size=1, max_size=8), st.integers(2, 5))
def test_unanimous_judges_make_the_same_jury(rows: list[list[int]], size: int) -> None:
    ranks = np.array([rows] * size)
    assert jury_ranks(ranks)[0].tolist() == rows
