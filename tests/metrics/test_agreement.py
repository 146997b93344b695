"""Agreement figures of two annotators: RBO, exact match, tau-b, alpha and harmful F1."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from harmrank.common.errors import InvalidInput
from harmrank.metrics.agreement import AgreementResult, agreement, pairwise_agreement
from harmrank.metrics.chance import all_rankings
from harmrank.metrics.contributions import (
    confusion_counts,
    harmful_items,
    kendall_tau_b,
    rbo_per_prompt,
)
from harmrank.metrics.params import AgreementSettings, RBOSettings
from harmrank.metrics.rankings import AnnotatorRankings, ListConvention, to_rbo_list
from harmrank.metrics.rbo import EMPTY_CONVENTION, rbo

IntArray = npt.NDArray[np.int64]
MODELS = ("x", "y", "z")
VALID = [tuple(int(v) for v in row) for k in range(4) for row in all_rankings(3, k)]  # all 16
# F1 = 2 tp / (K_A + K_B) and accuracy are symmetric too; precision and recall swap.
SYMMETRIC = (
    "rbo",
    "exact_match",
    "kendall_tau_b",
    "krippendorff_alpha",
    "accuracy_harmful",
    "f1_harmful",
)


def annotator(
    name: str, rows: Sequence[Sequence[int]], cats: Sequence[str] | None = None
) -> AnnotatorRankings:
    prompts = {f"p{i}": row for i, row in enumerate(rows)}
    categories = None if cats is None else {f"p{i}": c for i, c in enumerate(cats)}
    return AnnotatorRankings.build(name, MODELS, prompts, categories)


def run(a: AnnotatorRankings, b: AnnotatorRankings, resamples: int = 50) -> AgreementResult:
    return agreement(a, b, AgreementSettings(p=0.9, resamples=resamples, seed=7))


rankings = st.lists(st.sampled_from(VALID), min_size=1, max_size=25)
pairs = st.integers(1, 25).flatmap(
    lambda n: st.tuples(*(st.lists(st.sampled_from(VALID), min_size=n, max_size=n),) * 2)
)


def same(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, abs=1e-12)


# ------------------------------------------------------------------------ tau-b


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VALID), st.sampled_from(VALID))
def test_tau_b_matches_scipy_per_prompt(x: tuple[int, ...], y: tuple[int, ...]) -> None:
    tau = kendall_tau_b(np.array([x]), np.array([y]))[0]
    if len(set(x)) == 1 or len(set(y)) == 1:  # a constant ranking (all N/A): undefined
        assert math.isnan(tau)
    else:  # N/A ties (two zeros) included: tau-b's tie correction
        assert tau == pytest.approx(kendalltau(x, y, variant="b").statistic)


def test_tau_b_of_four_models_with_na_ties() -> None:
    x, y = np.array([[0, 0, 1, 2]]), np.array([[2, 0, 0, 1]])
    assert kendall_tau_b(x, y)[0] == pytest.approx(kendalltau(x[0], y[0], variant="b").statistic)


def test_undefined_tau_is_excluded_and_counted() -> None:
    a = annotator("a", [(0, 0, 0), (1, 2, 3), (1, 0, 0)])
    b = annotator("b", [(1, 2, 0), (1, 2, 3), (0, 0, 0)])
    tau = run(a, b).figure("kendall_tau_b")
    assert tau.value == pytest.approx(1.0)  # only p1 is defined, and it agrees fully
    assert tau.n == 1
    assert tau.params["n_undefined"] == 2
    assert "excluded" in str(tau.params["undefined_rule"])


# ------------------------------------------------------------------------ harmful F1


def test_confusion_counts_per_prompt() -> None:
    a = np.array([[1, 0, 2], [0, 0, 0]])
    b = np.array([[1, 2, 0], [0, 1, 0]])
    np.testing.assert_array_equal(confusion_counts(a, b), [[1, 1, 1, 0], [0, 0, 1, 2]])


def test_f1_precision_recall_on_a_hand_confusion_matrix() -> None:
    # Cells (A harmful?, B harmful?) over 4 prompts x 3 models (x, y, z):
    #   p0 A (1,0,2) B (1,2,0): tp x, fn y, fp z      p1 A (0,0,0) B (0,1,0): fn y, tn x z
    #   p2 A (1,2,3) B (3,2,1): tp x y z              p3 A (0,1,2) B (0,0,0): fp y z, tn x
    # tp = 4, fp = 3, fn = 2, tn = 3: precision 4/7, recall 4/6, F1 = 8/(8+3+2) = 8/13,
    # accuracy (4+3)/12 = 7/12.
    a = annotator("a", [(1, 0, 2), (0, 0, 0), (1, 2, 3), (0, 1, 2)])
    b = annotator("b", [(1, 2, 0), (0, 1, 0), (3, 2, 1), (0, 0, 0)])
    result = run(a, b)
    assert result.figure("precision_harmful").value == pytest.approx(4 / 7)
    assert result.figure("recall_harmful").value == pytest.approx(4 / 6)
    assert result.figure("f1_harmful").value == pytest.approx(8 / 13)
    assert result.figure("accuracy_harmful").value == pytest.approx(7 / 12)
    params = result.figure("f1_harmful").params
    assert (params["tp"], params["fp"], params["fn"], params["tn"]) == (4, 3, 2, 3)
    assert params["reference"] == "b"


def test_swapping_the_reference_swaps_precision_and_recall() -> None:
    a = annotator("a", [(1, 2, 0), (1, 0, 0)])
    b = annotator("b", [(1, 0, 0), (0, 0, 0)])
    # tp = 1 (p0 x), fp = 2 (p0 y, p1 x), fn = 0: precision 1/3, recall 1, F1 = 2/4.
    ab, ba = run(a, b), run(b, a)
    assert ab.figure("precision_harmful").value == pytest.approx(1 / 3)
    assert ab.figure("recall_harmful").value == 1.0
    assert ba.figure("precision_harmful").value == 1.0
    assert ba.figure("recall_harmful").value == pytest.approx(1 / 3)
    assert ab.figure("f1_harmful").value == ba.figure("f1_harmful").value == pytest.approx(0.5)


# ------------------------------------------------------------------------ rbo and exact match


@pytest.mark.parametrize("lists", ["harmful", "tied"])
def test_rbo_is_the_mean_of_scalar_rbo_per_prompt(lists: ListConvention) -> None:
    rows_a = [(1, 2, 3), (0, 1, 0), (0, 0, 0), (2, 1, 0)]
    rows_b = [(3, 2, 1), (1, 0, 0), (0, 0, 0), (2, 1, 0)]
    scalar = [
        rbo(to_rbo_list(x, MODELS, lists), to_rbo_list(y, MODELS, lists), p=0.9).rbo
        for x, y in zip(rows_a, rows_b, strict=True)
    ]
    fig = run(annotator("a", rows_a), annotator("b", rows_b)).figure("rbo", lists)
    assert fig.value == pytest.approx(np.mean(scalar))
    assert fig.params["p"] == 0.9
    assert (fig.params["variant"], fig.params["ties"], fig.params["lists"]) == ("ext", "w", lists)
    assert fig.params["empty_convention"] == EMPTY_CONVENTION


@pytest.mark.parametrize("lists", ["harmful", "tied"])
def test_batched_and_memoised_rbo_agree_with_scalar_rbo_on_every_pair(
    lists: ListConvention,
) -> None:
    a = np.array([x for x in VALID for _ in VALID])
    b = np.array([y for _ in VALID for y in VALID])
    scalar = [
        rbo(to_rbo_list(x, MODELS, lists), to_rbo_list(y, MODELS, lists), p=0.7).rbo
        for x, y in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(rbo_per_prompt(a, b, lists, RBOSettings(p=0.7)), scalar, rtol=1e-12)


def test_harmful_items_are_most_harmful_first() -> None:
    ranks = np.array([[1, 0, 2], [0, 0, 0], [3, 1, 2]])
    np.testing.assert_array_equal(harmful_items(ranks), [[2, 0, -1], [-1, -1, -1], [0, 2, 1]])


def test_empty_harmful_lists_are_counted() -> None:
    a = annotator("a", [(0, 0, 0), (0, 0, 0), (1, 0, 0)])
    b = annotator("b", [(0, 0, 0), (0, 1, 0), (1, 0, 0)])
    fig = run(a, b).figure("rbo", "harmful")
    # both empty -> 1.0, one empty -> 0.0 (rbo.EMPTY_CONVENTION), identical -> 1.0
    assert fig.value == pytest.approx(2 / 3)
    assert (fig.params["n_both_empty"], fig.params["n_one_empty"]) == (1, 1)
    assert "n_both_empty" not in run(a, b).figure("rbo", "tied").params


def test_rbo_variant_and_ties_are_passed_on() -> None:
    a, b = annotator("a", [(1, 0, 0)]), annotator("b", [(0, 1, 0)])
    result = agreement(
        a, b, AgreementSettings(p=0.8, resamples=10, seed=1, rbo_variant="min", rbo_ties="a")
    )
    fig = result.figure("rbo", "tied")
    expected = rbo(["x", ["y", "z"]], ["y", ["x", "z"]], p=0.8, variant="min", ties="a").rbo
    assert fig.value == pytest.approx(expected)
    assert (fig.params["variant"], fig.params["ties"]) == ("min", "a")


def test_full_reversal_of_three_scores_0855() -> None:
    # p = 0.9, three items: agreements A_1..A_3 = 0, 1/2, 1 and the ext tail X_3/3 p^3 = 0.729:
    # 0.1 * 0 + 0.09 * 0.5 + 0.081 * 1 + 0.729 = 0.855.
    fig = run(annotator("a", [(1, 2, 3)]), annotator("b", [(3, 2, 1)])).figure("rbo", "harmful")
    assert fig.value == pytest.approx(0.855)


def test_exact_match_rate() -> None:
    a = annotator("a", [(1, 2, 3), (0, 1, 0), (0, 0, 0), (2, 1, 0)])
    b = annotator("b", [(1, 2, 3), (1, 0, 0), (0, 0, 0), (1, 2, 0)])
    assert run(a, b).figure("exact_match").value == pytest.approx(0.5)


# ------------------------------------------------------------------------ inputs and layout


def test_no_shared_prompts_is_an_error() -> None:
    a = annotator("a", [(1, 0, 0)])
    b = AnnotatorRankings.build("b", MODELS, {"other": (1, 0, 0)})
    with pytest.raises(InvalidInput, match="share no prompts"):
        run(a, b)


def test_only_shared_prompts_count() -> None:
    a = AnnotatorRankings.build("a", MODELS, {"p0": (1, 2, 3), "p1": (1, 0, 0)})
    b = AnnotatorRankings.build("b", MODELS, {"p1": (1, 0, 0), "p9": (0, 0, 0)})
    result = run(a, b)
    assert result.n_shared_prompts == 1
    assert result.figure("exact_match").value == 1.0


def test_every_metric_is_reported_once_with_its_method() -> None:
    result = run(annotator("a", [(1, 2, 0)] * 3), annotator("b", [(1, 0, 2)] * 3))
    keys = [(f.metric, f.params.get("lists")) for f in result.figures]
    assert len(keys) == len(set(keys)) == 10
    for fig in result.figures:
        assert "percentile bootstrap over prompts, 50 resamples, seed 7" in str(
            fig.params["bootstrap_method"]
        )
        assert fig.params["confidence"] == 0.95
        assert str(fig.params["chance_method"]).startswith("exact")
    with pytest.raises(KeyError):
        result.figure("rbo")  # rbo needs its list convention


def test_per_category_figures_equal_a_run_on_the_category_alone() -> None:
    rng = np.random.default_rng(5)
    rows_a = [VALID[i] for i in rng.integers(0, len(VALID), 40)]
    rows_b = [VALID[i] for i in rng.integers(0, len(VALID), 40)]
    cats = ["violence" if i % 3 else "fraud" for i in range(40)]
    result = run(annotator("a", rows_a, cats), annotator("b", rows_b, cats))
    assert set(result.by_category) == {"fraud", "violence"}
    keep = [i for i, c in enumerate(cats) if c == "fraud"]
    alone = run(
        annotator("a", [rows_a[i] for i in keep]), annotator("b", [rows_b[i] for i in keep])
    )
    for fig, ref in zip(result.by_category["fraud"], alone.figures, strict=True):
        assert same(fig.value, ref.value)
        assert same(fig.chance, ref.chance)
        assert fig.n == ref.n
        assert "category 'fraud'" in str(fig.params["bootstrap_method"])


def test_uncategorised_prompts_are_left_out_of_the_breakdown() -> None:
    a = AnnotatorRankings.build(
        "a", MODELS, {"p0": (1, 0, 0), "p1": (0, 1, 0)}, {"p0": "c", "p1": None}
    )
    b = AnnotatorRankings.build("b", MODELS, {"p0": (1, 0, 0), "p1": (0, 1, 0)})
    result = run(a, b)
    assert list(result.by_category) == ["c"]
    assert result.figure("exact_match", category="c").n == 1


def test_pairwise_agreement_covers_every_pair() -> None:
    anns = [annotator(name, [(1, 2, 0), (0, 0, 1)]) for name in "abcd"]
    results = pairwise_agreement(anns, AgreementSettings(p=0.9, resamples=10, seed=1))
    assert [(r.a, r.b) for r in results] == [
        ("a", "b"),
        ("a", "c"),
        ("a", "d"),
        ("b", "c"),
        ("b", "d"),
        ("c", "d"),
    ]


# ------------------------------------------------------------------------ properties


@settings(max_examples=60, deadline=None)
@given(rankings)
def test_self_agreement_is_perfect(rows: list[tuple[int, ...]]) -> None:
    result = run(annotator("a", rows), annotator("b", rows), resamples=5)
    assert result.figure("rbo", "harmful").value == pytest.approx(1.0)
    assert result.figure("rbo", "tied").value == pytest.approx(1.0)
    assert result.figure("exact_match").value == 1.0
    values = {v for row in rows for v in row}
    alpha = result.figure("krippendorff_alpha").value
    assert alpha == pytest.approx(1.0) if len(values) > 1 else math.isnan(alpha)
    f1 = result.figure("f1_harmful").value
    assert f1 == pytest.approx(1.0) if values != {0} else math.isnan(f1)
    tau = result.figure("kendall_tau_b")
    assert tau.value == pytest.approx(1.0) if tau.n else math.isnan(tau.value)


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_symmetric_figures(rows: tuple[list[tuple[int, ...]], list[tuple[int, ...]]]) -> None:
    a, b = annotator("a", rows[0]), annotator("b", rows[1])
    ab, ba = run(a, b, resamples=5), run(b, a, resamples=5)
    for fig_ab, fig_ba in zip(ab.figures, ba.figures, strict=True):
        if fig_ab.metric in SYMMETRIC:
            assert same(fig_ab.value, fig_ba.value), fig_ab.metric


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_bounds(rows: tuple[list[tuple[int, ...]], list[tuple[int, ...]]]) -> None:
    result = run(annotator("a", rows[0]), annotator("b", rows[1]), resamples=20)
    for fig in result.figures:
        low = -1.0 if fig.metric in ("kendall_tau_b", "krippendorff_alpha") else 0.0
        for value in (fig.value, fig.chance, fig.ci_low, fig.ci_high):
            # alpha has no fixed floor; every other figure lives in [0, 1] or [-1, 1]
            assert math.isnan(value) or value <= 1.0 + 1e-12
            assert math.isnan(value) or fig.metric == "krippendorff_alpha" or value >= low - 1e-12
        assert math.isnan(fig.ci_low) or fig.ci_low <= fig.ci_high
