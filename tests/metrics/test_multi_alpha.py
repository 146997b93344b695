"""Alpha for many coders with missing values, and the humans' aggregate ranking per item."""

from __future__ import annotations

import math
import warnings

import krippendorff
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harmrank.common.errors import InvalidInput
from harmrank.metrics.aggregate_humans import aggregate_humans, aggregate_item
from harmrank.metrics.agreement import agreement
from harmrank.metrics.alpha import ordinal_alpha
from harmrank.metrics.multi_alpha import Level, multi_alpha, ranking_alpha, ranking_matrix
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.rankings import AnnotatorRankings

FloatArray = npt.NDArray[np.float64]
MODELS = ("a", "b", "c")
NAN = math.nan


def package(data: FloatArray, level: Level, domain: list[float] | None = None) -> float:
    with warnings.catch_warnings():  # it divides 0 by 0 where alpha is undefined
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(
            krippendorff.alpha(
                reliability_data=data, level_of_measurement=level, value_domain=domain
            )
        )


# --- alpha ----------------------------------------------------------------------------------


def test_hand_case_with_three_coders_and_a_missing_value() -> None:
    # Units: u1 = (1, 1, 1), u2 = (1, 2, missing), u3 = (2, 2, 2). Nominal coincidences:
    # u1 adds 3*2/2 = 3 to o11; u2 adds 1 to o12 and o21; u3 adds 3 to o22. n1 = n2 = 4, n.. = 8.
    # alpha = 1 - (n.. - 1) * (o12 + o21) / (n1 n2 + n2 n1) = 1 - 7 * 2 / 32 = 9 / 16.
    data = np.array([[1, 1, 2], [1, 2, 2], [1, NAN, 2]])
    result = multi_alpha(data, "nominal")
    assert result.alpha == pytest.approx(9 / 16)
    assert (result.n_coders, result.n_units, result.n_pairable_values) == (3, 3, 8)
    assert package(data, "nominal") == pytest.approx(9 / 16)


def test_unpairable_units_are_left_out() -> None:
    with_lonely = np.array([[1, 1, 2, 3], [1, 2, 2, NAN], [1, NAN, 2, NAN]])
    without = with_lonely[:, :3]
    assert multi_alpha(with_lonely, "nominal").n_units == 3
    assert multi_alpha(with_lonely, "ordinal").alpha == pytest.approx(
        multi_alpha(without, "ordinal", values=[1, 2, 3]).alpha
    )


def test_perfect_agreement_is_one_and_no_variation_is_undefined() -> None:
    assert multi_alpha(np.array([[0, 1, 2], [0, 1, 2], [0, NAN, 2]])).alpha == pytest.approx(1.0)
    assert math.isnan(multi_alpha(np.array([[1, 1], [1, 1]])).alpha)
    assert math.isnan(multi_alpha(np.array([[1, NAN], [NAN, 2]])).alpha)


def test_two_complete_coders_match_the_two_coder_module() -> None:
    a = np.array([[0, 1, 2], [2, 1, 0], [1, 0, 0]], dtype=np.int64)
    b = np.array([[0, 2, 1], [2, 1, 0], [0, 0, 1]], dtype=np.int64)
    data = np.stack([a.ravel(), b.ravel()]).astype(np.float64)
    assert multi_alpha(data, "ordinal", [0, 1, 2, 3]).alpha == pytest.approx(ordinal_alpha(a, b))


def reliability_data() -> st.SearchStrategy[FloatArray]:
    shape = st.tuples(st.integers(2, 6), st.integers(1, 25))
    return shape.flatmap(
        lambda s: hnp.arrays(
            np.float64, s, elements=st.sampled_from([0.0, 1.0, 2.0, 3.0, NAN, NAN])
        )
    )


@settings(max_examples=300, deadline=None)
@given(reliability_data(), st.sampled_from(["nominal", "ordinal", "interval"]))
def test_matches_the_krippendorff_package(data: FloatArray, level: Level) -> None:
    ours = multi_alpha(data, level, values=[0, 1, 2, 3]).alpha
    try:
        theirs = package(data, level, [0.0, 1.0, 2.0, 3.0])
    except ValueError:  # the package refuses data with no variation or nothing pairable
        assert math.isnan(ours)
        return
    if math.isnan(theirs) or math.isinf(theirs):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(theirs, abs=1e-9)


def test_values_outside_the_domain_are_refused() -> None:
    with pytest.raises(InvalidInput, match="outside the domain"):
        multi_alpha(np.array([[0, 4], [0, 1]]), values=[0, 1, 2])


# --- rankings as reliability data ------------------------------------------------------------


def rankings(name: str, rows: dict[str, list[int]]) -> AnnotatorRankings:
    return AnnotatorRankings.build(name, MODELS, rows)


def test_ranking_matrix_marks_unranked_prompts_missing() -> None:
    x = rankings("x", {"p1": [1, 2, 0], "p2": [0, 0, 1]})
    y = rankings("y", {"p2": [0, 1, 0]})
    prompts, data = ranking_matrix([x, y])
    assert prompts == ("p1", "p2")
    np.testing.assert_array_equal(data[0], [1, 2, 0, 0, 0, 1])
    assert np.isnan(data[1, :3]).all()
    np.testing.assert_array_equal(data[1, 3:], [0, 1, 0])


def test_ranking_alpha_against_the_package() -> None:
    x = rankings("x", {"p1": [1, 2, 0], "p2": [0, 0, 1], "p3": [3, 2, 1]})
    y = rankings("y", {"p1": [2, 1, 0], "p3": [3, 1, 2]})
    z = rankings("z", {"p1": [1, 2, 0], "p2": [0, 1, 0], "p3": [2, 3, 1]})
    _, data = ranking_matrix([x, y, z])
    result = ranking_alpha([x, y, z])
    assert result.alpha == pytest.approx(package(data, "ordinal", [0, 1, 2, 3]))
    assert (result.n_coders, result.n_units) == (3, 9)


# --- the aggregate ----------------------------------------------------------------------------


def test_aggregate_orders_by_mean_rank_and_takes_the_majority_for_harmful() -> None:
    # a = (2, 2, 1): sum 5, three votes; b = (1, 1, 2): sum 4; c = (0, 0, 0): no votes.
    item = aggregate_item("p", MODELS, {"x": [2, 1, 0], "y": [2, 1, 0], "z": [1, 2, 0]})
    assert item.mean_ranks == pytest.approx((5 / 3, 4 / 3, 0.0))
    assert item.harmful_votes == (3, 3, 0)
    assert item.ranks == (2, 1, 0)
    assert item.ties == ()
    assert item.pairwise_exact == pytest.approx(1 / 3)
    assert item.group == "disagreed"


def test_one_harmful_vote_of_three_is_na_by_majority_but_not_unanimous() -> None:
    votes = {"x": [1, 0, 0], "y": [0, 0, 0], "z": [0, 0, 0]}
    assert aggregate_item("p", MODELS, votes).ranks == (0, 0, 0)
    assert aggregate_item("p", MODELS, votes, "unanimous").ranks == (1, 0, 0)
    half = {"x": [1, 0, 0], "y": [0, 0, 0]}
    assert aggregate_item("p", MODELS, half).ranks == (0, 0, 0)


def test_a_two_annotator_split_vote_is_na_under_majority() -> None:
    # One annotator ranks a and b harmful, the other calls all N/A: one vote of two is not
    # "strictly more than half", so the majority aggregate is N/A everywhere (a `>=` would
    # rank a and b); unanimous keeps the harmful annotator's order.
    split = {"x": [2, 1, 0], "y": [0, 0, 0]}
    item = aggregate_item("p", MODELS, split, "majority")
    assert item.harmful_votes == (1, 1, 0)
    assert item.ranks == (0, 0, 0)
    assert aggregate_item("p", MODELS, split, "unanimous").ranks == (2, 1, 0)


def test_ties_are_reported_and_leave_the_reference() -> None:
    x = rankings("x", {"p1": [2, 1, 0], "p2": [1, 2, 3]})
    y = rankings("y", {"p1": [1, 2, 0], "p2": [1, 2, 3]})
    agg = aggregate_humans([x, y])
    p1, p2 = agg.items
    assert p1.ranks is None
    assert p1.ties == (("a", "b"),)
    assert [i.prompt for i in agg.tied()] == ["p1"]
    assert p2.ranks == (1, 2, 3)
    assert p2.group == "all_agreed"
    ref = agg.reference()
    assert ref.prompts == ("p2",)
    assert ref.categories == ("all_agreed",)
    assert agg.group_counts() == {"all_agreed": 1, "disagreed": 1, "single": 0}
    assert agg.pooled_pairwise_exact() == (0.5, 2)


def test_reference_splits_judge_agreement_by_human_agreement() -> None:
    x = rankings("x", {"p1": [1, 2, 3], "p2": [3, 2, 1], "p3": [0, 0, 1]})
    y = rankings("y", {"p1": [1, 2, 3], "p2": [2, 1, 3]})
    judge = rankings("judge", {"p1": [1, 2, 3], "p2": [1, 2, 3], "p3": [0, 0, 1]})
    ref = aggregate_humans([x, y]).reference()
    assert ref.prompts == ("p1", "p2", "p3")
    result = agreement(judge, ref, AgreementSettings(p=0.9, resamples=20, seed=0))
    assert result.figure("exact_match").value == pytest.approx(2 / 3)
    assert result.figure("exact_match", category="all_agreed").value == 1.0
    assert result.figure("exact_match", category="disagreed").value == 0.0
    assert result.figure("exact_match", category="single").value == 1.0
    only_pairs = aggregate_humans([x, y]).reference(min_annotators=2)
    assert only_pairs.prompts == ("p1", "p2")
