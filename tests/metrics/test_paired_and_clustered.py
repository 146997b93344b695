"""Paired comparisons, clustered intervals and chance-corrected agreement, on made-up data."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from harmrank.common.errors import InvalidInput
from harmrank.metrics.agreement import agreement, chance_corrected
from harmrank.metrics.bootstrap import cluster_weights, percentile_intervals, resample_weights
from harmrank.metrics.chance import all_rankings
from harmrank.metrics.paired import comparisons, paired_difference
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings, build_report

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
MODELS = ("a", "b", "c")
VALID = np.vstack([all_rankings(3, k) for k in range(4)])


def annotator(name: str, rows: IntArray) -> AnnotatorRankings:
    return AnnotatorRankings.build(name, MODELS, {f"p{i}": tuple(r) for i, r in enumerate(rows)})


def copy_of(reference: IntArray, agree: BoolArray, rng: np.random.Generator) -> IntArray:
    """The reference where ``agree``, elsewhere a valid ranking that differs from it."""
    out = reference.copy()
    for i in np.flatnonzero(~agree):
        choices = [r for r in VALID if (r != reference[i]).any()]
        out[i] = choices[rng.integers(len(choices))]
    return out


# ------------------------------------------------------------------------------ paired


def test_paired_bootstrap_recovers_a_known_difference() -> None:
    rng = np.random.default_rng(3)
    n = 400
    reference = VALID[rng.integers(len(VALID), size=n)]
    # exact match by construction: x agrees on 70% of prompts, y on 40% -> difference 0.3
    agree_x = np.arange(n) < 280
    agree_y = (np.arange(n) >= 120) & (np.arange(n) < 280)
    ref = annotator("ref", reference)
    x = annotator("x", copy_of(reference, agree_x, rng))
    y = annotator("y", copy_of(reference, agree_y, rng))
    s = AgreementSettings(p=0.9, resamples=2000, seed=5)
    d = paired_difference((x, ref), (y, ref), "exact_match", s)
    assert (d.x, d.y, d.n) == (("x", "ref"), ("y", "ref"), n)
    assert d.difference == pytest.approx(0.3, abs=1e-12)
    assert (d.x_value, d.y_value) == pytest.approx((0.7, 0.4))
    # y agrees only where x does, so the paired difference is a share of prompts (0.3) and its
    # interval is the binomial one, about +-1.96 sqrt(.3 * .7 / 400) = +-0.045
    assert d.ci_low == pytest.approx(0.255, abs=0.02)
    assert d.ci_high == pytest.approx(0.345, abs=0.02)


def test_paired_interval_covers_a_population_difference() -> None:
    """Simulated: x matches the reference with probability .8, y with .6; truth .2."""
    covered = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        reference = VALID[rng.integers(len(VALID), size=150)]
        ref = annotator("ref", reference)
        x = annotator("x", copy_of(reference, rng.random(150) < 0.8, rng))
        y = annotator("y", copy_of(reference, rng.random(150) < 0.6, rng))
        d = paired_difference(
            (x, ref), (y, ref), "exact_match", AgreementSettings(p=0.9, resamples=400, seed=seed)
        )
        covered += d.ci_low <= 0.2 <= d.ci_high
    assert covered >= 52  # 95% nominal: 57 expected of 60


def test_comparisons_are_judges_with_each_other_against_the_reference() -> None:
    pairs = [("g", "human"), ("c", "human"), ("g", "c"), ("g", "l"), ("human", "expert")]
    assert comparisons(pairs, "human") == [
        (("g", "c"), ("g", "human")),
        (("g", "c"), ("c", "human")),
    ]
    assert comparisons(pairs, None) == []


def test_a_paired_comparison_needs_shared_prompts() -> None:
    one = annotator("one", VALID[:1])
    with pytest.raises(InvalidInput, match="share 1 prompts"):
        paired_difference((one, one), (one, one), "exact_match", AgreementSettings(p=0.9))


def test_a_report_names_the_comparisons_it_could_not_pair() -> None:
    """A judge that ranked one prompt: its paired comparisons are listed as not made, the rest
    of the report is computed (a small run's report does not fail)."""
    human, full = annotator("human", VALID[:8]), annotator("full", VALID[4:12])
    few = annotator("few", VALID[:1])
    pairs = [("few", "human"), ("full", "human"), ("few", "full")]
    report = build_report(
        [few, full, human], ReportSettings(p=0.9, resamples=10), pairs=pairs, reference_name="human"
    )
    assert report.paired == []
    assert len(report.agreement) == 3
    stated = report.conventions["paired_not_compared"]
    assert "few~full against few~human: 1 shared prompts" in stated
    assert "few~full against full~human: 1 shared prompts" in stated
    both = build_report(
        [annotator("few", VALID[:4]), full, human],
        ReportSettings(p=0.9, resamples=10),
        pairs=pairs,
        reference_name="human",
    )
    assert both.paired
    assert "paired_not_compared" not in both.conventions


# ------------------------------------------------------------------------------ clustered


def _simulated_clusters(rng: np.random.Generator, groups: int, size: int) -> FloatArray:
    """Per-prompt 0/1 agreement whose rate varies by cluster (an annotation group's habits)."""
    rates = rng.beta(3.0, 2.0, size=groups)  # mean 0.6, sd 0.2
    return (rng.random((groups, size)) < rates[:, None]).astype(np.float64).ravel()


def test_clustered_interval_covers_and_the_prompt_level_one_does_not() -> None:
    # 250 simulated studies of 200 resamples each: the design effect is 5 (ICC 1/6, 25 prompts
    # a cluster), so an interval that resamples prompts covers about 65% of the time, far from
    # either bound, and the clustered one about 95% (sd of the count about 3.5).
    groups, size, truth, studies = 40, 25, 0.6, 250
    cluster_of = np.repeat(np.arange(groups), size)
    hits = {"cluster": 0, "prompt": 0}
    for seed in range(studies):
        rng = np.random.default_rng(seed)
        values = _simulated_clusters(rng, groups, size)
        weights = {
            "cluster": cluster_weights(cluster_of, 200, seed + 10_000),
            "prompt": resample_weights(groups * size, 200, seed + 10_000),
        }
        for unit, w in weights.items():
            sums = w.times(np.column_stack([values, np.ones_like(values)]))
            means = (sums[:, 0] / sums[:, 1])[:, None]
            low, high = percentile_intervals(means, 0.95)
            hits[unit] += bool(low[0] <= truth <= high[0])
    assert hits["cluster"] >= 0.93 * studies, hits
    assert hits["prompt"] < 0.8 * studies, hits  # prompts are not independent: far below 95%


def test_cluster_weights_move_whole_clusters() -> None:
    cluster_of = np.array([0, 0, 1, 2, 2, 2])
    w = cluster_weights(cluster_of, 50, 1).rows(0, 50)
    assert w.shape == (50, 6)
    assert (w[:, 0] == w[:, 1]).all()
    assert (w[:, 3] == w[:, 5]).all()
    assert (w[:, [0, 2, 3]].sum(axis=1) == 3).all()  # three clusters drawn each time


def test_agreement_with_clusters_states_both_intervals() -> None:
    rng = np.random.default_rng(0)
    reference = VALID[rng.integers(len(VALID), size=60)]
    ref, x = (
        annotator("ref", reference),
        annotator("x", copy_of(reference, rng.random(60) < 0.5, rng)),
    )
    clusters = {f"p{i}": f"g{i // 10}" for i in range(60)}
    s = AgreementSettings(p=0.9, resamples=200, seed=1, cluster_key="group")
    fig = agreement(x, ref, s, clusters=clusters).figure("exact_match")
    assert fig.params["bootstrap_unit"] == "group"
    assert fig.params["n_clusters"] == 6
    assert "clusters (group)" in str(fig.params["bootstrap_method"])
    assert fig.prompt_ci is not None
    assert fig.prompt_ci != (fig.ci_low, fig.ci_high)
    plain = agreement(x, ref, AgreementSettings(p=0.9, resamples=200, seed=1))
    assert plain.figure("exact_match").prompt_ci is None
    assert plain.figure("exact_match").value == fig.value


# ------------------------------------------------------------------------------ chance-corrected


def test_chance_corrected_by_hand() -> None:
    a = AnnotatorRankings.build("a", MODELS, {"p1": (1, 2, 0), "p2": (0, 0, 1)})
    b = AnnotatorRankings.build("b", MODELS, {"p1": (1, 2, 0), "p2": (0, 1, 0)})
    fig = agreement(a, b, AgreementSettings(p=0.9, resamples=0)).figure("exact_match")
    # exact match 1/2; chance: 1/6 (two harmful of three: 6 rankings) and 1/3, mean 1/4
    assert (fig.value, fig.chance) == pytest.approx((0.5, 0.25))
    assert fig.chance_corrected == pytest.approx((0.5 - 0.25) / 0.75)
    # F1 harmful: tp 2, fp 1, fn 1 -> 2/3; chance keeps A's harmful counts
    f1 = agreement(a, b, AgreementSettings(p=0.9, resamples=0)).figure("f1_harmful")
    assert f1.chance_corrected == pytest.approx((f1.value - f1.chance) / (1 - f1.chance))


def test_chance_corrected_is_undefined_where_chance_is_one() -> None:
    out = chance_corrected(np.array([1.0, 0.5, 0.9]), np.array([1.0, 0.5, 0.8]))
    assert np.isnan(out[0])
    assert out[1] == 0.0
    assert out[2] == pytest.approx(0.5)


def test_chance_corrected_interval_brackets_its_value() -> None:
    rng = np.random.default_rng(2)
    reference = VALID[rng.integers(len(VALID), size=200)]
    ref, x = (
        annotator("ref", reference),
        annotator("x", copy_of(reference, rng.random(200) < 0.6, rng)),
    )
    for fig in agreement(x, ref, AgreementSettings(p=0.9, resamples=300, seed=2)).figures:
        if np.isfinite(fig.chance_corrected):
            assert fig.cc_low <= fig.chance_corrected <= fig.cc_high, fig.metric
