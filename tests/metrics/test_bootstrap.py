"""Percentile bootstrap over prompts as a weight matrix times per-prompt contributions."""

from __future__ import annotations

import math
from collections import OrderedDict

import krippendorff
import numpy as np
import numpy.typing as npt
import pytest

from harmrank.common.errors import InvalidInput
from harmrank.metrics import bootstrap
from harmrank.metrics.agreement import AgreementResult, agreement
from harmrank.metrics.agreement_stats import STATS, Metric, statistics
from harmrank.metrics.alpha import ordinal_alpha
from harmrank.metrics.bootstrap import BootstrapSpec, percentile_intervals, resample_weights
from harmrank.metrics.chance import all_rankings
from harmrank.metrics.contributions import prompt_contributions
from harmrank.metrics.params import AgreementSettings, RBOSettings
from harmrank.metrics.rankings import AnnotatorRankings, ListConvention

IntArray = npt.NDArray[np.int64]
MODELS = ("x", "y", "z")
POOL = np.vstack([all_rankings(3, k) for k in range(4)])


def sample_pair(n: int, seed: int) -> tuple[IntArray, IntArray]:
    """Two rank arrays that agree more often than chance (B copies A on about half the prompts)."""
    rng = np.random.default_rng(seed)
    a = POOL[rng.integers(0, len(POOL), n)]
    b = np.where(rng.random(n)[:, None] < 0.5, a, POOL[rng.integers(0, len(POOL), n)])
    return a, b


def annotators(
    a: IntArray, b: IntArray, cats: list[str] | None = None
) -> tuple[AnnotatorRankings, ...]:
    out = []
    for name, ranks in (("a", a), ("b", b)):
        rows = {f"p{i}": tuple(int(v) for v in row) for i, row in enumerate(ranks)}
        categories = None if cats is None else {f"p{i}": c for i, c in enumerate(cats)}
        out.append(AnnotatorRankings.build(name, MODELS, rows, categories))
    return tuple(out)


def run(a: IntArray, b: IntArray, seed: int = 3, cats: list[str] | None = None) -> AgreementResult:
    x, y = annotators(a, b, cats)
    return agreement(x, y, AgreementSettings(p=0.9, resamples=300, seed=seed))


def test_weights_are_multinomial_counts_of_the_prompts() -> None:
    weights = resample_weights(50, 40, 9)
    assert weights.shape == (40, 50)
    assert weights.counts.dtype == np.uint8  # a byte a count, not float64's eight
    np.testing.assert_array_equal(weights.counts.sum(axis=1), 50)
    expected = np.random.default_rng(9).multinomial(50, [1 / 50] * 50, size=40)
    np.testing.assert_array_equal(weights.counts, expected)
    assert not weights.counts.flags.writeable  # shared through the cache: nobody may change it


def test_reproducible_with_the_seed() -> None:
    a, b = sample_pair(120, 1)
    assert run(a, b, seed=5) == run(a, b, seed=5)
    first, other = (
        run(a, b, seed=5).figure("rbo", "harmful"),
        run(a, b, seed=6).figure("rbo", "harmful"),
    )
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)
    assert first.value == other.value


def test_interval_contains_the_point_estimate_of_smooth_statistics() -> None:
    a, b = sample_pair(400, 2)
    result = run(a, b)
    smooth: list[tuple[Metric, ListConvention | None]] = [("rbo", "harmful"), ("rbo", "tied")]
    smooth += [("exact_match", None), ("kendall_tau_b", None)]
    smooth += [("krippendorff_alpha", None), ("f1_harmful", None), ("accuracy_harmful", None)]
    for metric, lists in smooth:
        fig = result.figure(metric, lists)
        assert fig.ci_low < fig.value < fig.ci_high, metric


def test_weights_times_contributions_equal_an_explicit_resample() -> None:
    a, b = sample_pair(80, 3)
    contrib = prompt_contributions(a, b, RBOSettings(p=0.9))
    weights = resample_weights(80, 5, 17)
    resampled = statistics(contrib.weighted(weights))
    for r, w in enumerate(weights.counts.astype(np.int64)):
        ra, rb = np.repeat(a, w, axis=0), np.repeat(b, w, axis=0)  # the resampled dataset itself
        names = [stat.metric for stat in STATS]
        alpha = resampled[r, names.index("krippendorff_alpha")]
        assert alpha == pytest.approx(ordinal_alpha(ra, rb), rel=1e-12)
        data = np.stack([ra.ravel(), rb.ravel()]).astype(np.float64)
        package = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
        assert alpha == pytest.approx(package, rel=1e-9)
        tp, fp, fn = (
            ((ra > 0) & (rb > 0)).sum(),
            ((ra > 0) & (rb == 0)).sum(),
            ((ra == 0) & (rb > 0)).sum(),
        )
        assert resampled[r, names.index("f1_harmful")] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        # and every figure equals a fresh run on the resampled prompts (duplicates renamed)
        fresh = run(ra, rb)
        np.testing.assert_allclose(resampled[r], [f.value for f in fresh.figures], rtol=1e-12)


def test_percentile_intervals_per_column() -> None:
    samples = np.random.default_rng(0).normal(size=(1000, 3))
    low, high = percentile_intervals(samples, 0.9)
    np.testing.assert_allclose(low, np.quantile(samples, 0.05, axis=0))
    np.testing.assert_allclose(high, np.quantile(samples, 0.95, axis=0))


def test_undefined_resamples_are_left_out_without_warnings() -> None:
    samples = np.array([[1.0, np.nan], [np.nan, np.nan], [3.0, np.nan]])
    low, high = percentile_intervals(samples, 0.5)
    assert (low[0], high[0]) == (1.5, 2.5)
    assert math.isnan(low[1])
    assert math.isnan(high[1])


def test_spec_is_validated_and_described() -> None:
    with pytest.raises(InvalidInput, match="resamples"):
        BootstrapSpec(resamples=-1, seed=1)
    with pytest.raises(InvalidInput, match="confidence"):
        BootstrapSpec(resamples=10, seed=1, confidence=1.0)
    spec = BootstrapSpec(resamples=10, seed=1, confidence=0.9)
    assert (
        spec.method() == "percentile bootstrap over prompts, 10 resamples, seed 1, confidence 0.9"
    )
    assert spec.params()["resamples"] == 10
    assert spec.within("fraud").weight_seed != spec.weight_seed


def test_a_category_interval_does_not_depend_on_the_other_categories() -> None:
    a, b = sample_pair(90, 4)
    two = run(a, b, cats=["c" if i < 60 else "d" for i in range(90)])
    three = run(a, b, cats=["c" if i < 60 else ("d" if i < 75 else "e") for i in range(90)])
    assert two.by_category["c"] == three.by_category["c"]
    assert two.by_category["d"] != three.by_category["d"]


def test_the_confidence_level_is_honoured() -> None:
    a, b = sample_pair(200, 6)
    x, y = annotators(a, b)
    narrow = agreement(
        x, y, AgreementSettings(p=0.9, resamples=300, seed=1, confidence=0.5)
    ).figure("exact_match")
    wide = agreement(x, y, AgreementSettings(p=0.9, resamples=300, seed=1, confidence=0.99)).figure(
        "exact_match"
    )
    assert wide.ci_low < narrow.ci_low < narrow.ci_high < wide.ci_high
    assert wide.params["confidence"] == 0.99


def test_zero_resamples_gives_no_interval_but_the_figures() -> None:
    from harmrank.metrics.agreement import agreement
    from harmrank.metrics.rankings import AnnotatorRankings

    models = ("m1", "m2", "m3")
    a = AnnotatorRankings.build("a", models, {"p1": (1, 2, 0), "p2": (0, 0, 1)})
    b = AnnotatorRankings.build("b", models, {"p1": (1, 2, 0), "p2": (0, 1, 0)})
    result = agreement(a, b, AgreementSettings(p=0.9, resamples=0, seed=0))
    exact = result.figure("exact_match")
    assert exact.value == 0.5
    assert np.isnan(exact.ci_low)
    assert np.isnan(exact.ci_high)
    assert "no bootstrap" in str(exact.params["bootstrap_method"])


def test_weights_drawn_a_few_rows_at_a_time_are_one_multinomial_draw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The counts are drawn in chunks of rows (so no int64 copy of the whole matrix is held);
    they must be the very draw of all rows at once, or every interval would move."""
    monkeypatch.setattr(bootstrap, "_DRAW_CELLS", 3 * 70)  # 3 rows of 70 prompts a draw
    monkeypatch.setattr(bootstrap, "_WEIGHTS", OrderedDict())
    weights = resample_weights(70, 10, 5)
    whole = np.random.default_rng(5).multinomial(70, [1.0 / 70] * 70, size=10)
    np.testing.assert_array_equal(weights.counts, whole)
    assert not weights.counts.flags.writeable


def test_the_weights_cache_is_bounded_by_bytes_and_keeps_the_newest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap, "_WEIGHTS", OrderedDict())
    # Two (10, 100) draws at a byte a count: the bound counts the compact counts, not float64.
    monkeypatch.setattr(bootstrap, "_WEIGHTS_CACHE_BYTES", 2 * 10 * 100)
    first = resample_weights(100, 10, 1).counts
    resample_weights(100, 10, 2)
    assert sum(c.nbytes for c in bootstrap._WEIGHTS.values()) == 2 * 10 * 100
    assert resample_weights(100, 10, 1).counts is first  # used again: now the most recent
    resample_weights(100, 10, 3)  # evicts seed 2, the least recently used
    assert list(bootstrap._WEIGHTS) == [(100, 10, 1), (100, 10, 3)]
    big = resample_weights(1000, 10, 4).counts  # over the bound alone: kept, as the only one
    assert list(bootstrap._WEIGHTS) == [(1000, 10, 4)]
    assert resample_weights(1000, 10, 4).counts is big
