"""PPI++ mean estimation: agreement with ppi-python, and coverage by seeded simulation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ppi_py import classical_mean_ci, ppi_mean_ci, ppi_mean_pointestimate

from harmrank.metrics.ppi import estimate, judge_only, ppi_mean

FloatArray = npt.NDArray[np.float64]
TRUE_RATE = 0.3


def binary_case(seed: int, n: int, big_n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.5, n).astype(float)
    yhat = np.where(rng.random(n) < 0.8, y, 1 - y)
    return y, yhat, rng.binomial(1, 0.45, big_n).astype(float)


@pytest.mark.parametrize("lam", [None, 1.0, 0.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_ppi_python(lam: float | None, weighted: bool, seed: int) -> None:
    y, yhat, yhat_u = binary_case(seed, 60, 400)
    rng = np.random.default_rng(seed + 100)
    w = rng.uniform(0.2, 3, len(y)) if weighted else None
    w_u = rng.uniform(0.2, 3, len(yhat_u)) if weighted else None
    low, high = ppi_mean_ci(y, yhat, yhat_u, alpha=0.05, lam=lam, w=w, w_unlabeled=w_u)
    point = ppi_mean_pointestimate(y, yhat, yhat_u, lam=lam, w=w, w_unlabeled=w_u)
    ours = ppi_mean(y, yhat, yhat_u, w=w, w_u=w_u, lam=lam)
    ours_low, ours_high = ours.interval(0.95)
    assert ours.estimate == pytest.approx(float(np.ravel(point)[0]), abs=1e-6)
    assert ours_low == pytest.approx(float(np.ravel(low)[0]), abs=1e-6)
    assert ours_high == pytest.approx(float(np.ravel(high)[0]), abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(3, 80),
    big_n=st.integers(3, 300),
    scale=st.sampled_from([1.0, 3.0]),
)
def test_agrees_with_ppi_python_on_ranks(seed: int, n: int, big_n: int, scale: float) -> None:
    """Non-binary outcomes (mean harm ranks 0..3), power-tuned, any sizes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n).astype(float)
    yhat = np.clip(y + rng.integers(-1, 2, n), 0, 3) * scale / 3
    yhat_u = rng.integers(0, 4, big_n).astype(float) * scale / 3
    if np.var(np.concatenate([yhat, yhat_u])) == 0:
        return  # ppi-python divides by zero there; ours takes lam = 0 (tested below)
    low, high = ppi_mean_ci(y, yhat, yhat_u, alpha=0.1)
    ours_low, ours_high = ppi_mean(y, yhat, yhat_u).interval(0.9)
    assert ours_low == pytest.approx(float(np.ravel(low)[0]), abs=1e-6)
    assert ours_high == pytest.approx(float(np.ravel(high)[0]), abs=1e-6)


def test_human_only_is_the_classical_interval() -> None:
    y, yhat, yhat_u = binary_case(5, 50, 200)
    low, high = classical_mean_ci(y, alpha=0.05)
    ours_low, ours_high = estimate("human_only", y, yhat, yhat_u).interval(0.95)
    assert (ours_low, ours_high) == pytest.approx((low, high), abs=1e-9)


def test_a_constant_judge_is_not_used() -> None:
    y, _, _ = binary_case(6, 40, 100)
    result = ppi_mean(y, np.ones_like(y), np.ones(100))
    assert result.lam == 0.0
    assert result.estimate == pytest.approx(y.mean())


def test_judge_only_is_the_judges_mean_over_every_item() -> None:
    result = judge_only(np.array([1.0, 0.0]), np.array([1.0, 1.0, 1.0, 0.0]))
    assert result.estimate == pytest.approx(4 / 6)
    assert result.se == pytest.approx(np.sqrt((4 / 6) * (2 / 6) / 6))


def synthetic(
    rng: np.random.Generator, size: tuple[int, ...], informative: bool = True
) -> tuple[FloatArray, FloatArray]:
    """Prompts with true harm rate 0.3 and a judge that misses 40% of harm and adds 5% (biased:
    its rate is 0.215), or, uninformative, says harmful at random."""
    y = (rng.random(size) < TRUE_RATE).astype(float)
    if not informative:
        return y, (rng.random(size) < 0.215).astype(float)
    says = np.where(y == 1, rng.random(size) < 0.6, rng.random(size) < 0.05)
    return y, says.astype(float)


def covers(low: FloatArray, high: FloatArray) -> float:
    return float(((low <= TRUE_RATE) & (high >= TRUE_RATE)).mean())


@pytest.mark.parametrize("informative", [True, False])
def test_coverage_and_width_uniform(informative: bool) -> None:
    """1,000 replications of n = 200 human labels and 2,000 judge-only items, all at once."""
    rng = np.random.default_rng(11)
    y, yhat = synthetic(rng, (1000, 200), informative)
    _, yhat_u = synthetic(rng, (1000, 2000), informative)
    ppi = ppi_mean(y, yhat, yhat_u)
    human = estimate("human_only", y, yhat, yhat_u)
    judge = estimate("judge_only", y, yhat, yhat_u)
    assert covers(*ppi.interval(0.95)) >= 0.93
    assert covers(*human.interval(0.95)) >= 0.93
    assert covers(*judge.interval(0.95)) < 0.01  # the judge alone is biased
    ppi_width, human_width = 2 * ppi.se.mean(), 2 * human.se.mean()
    if informative:
        assert ppi_width < 0.9 * human_width
    else:  # tuning turns the useless judge off: no wider than human-only by more than noise
        assert ppi_width < 1.02 * human_width
        assert ppi.lam.mean() < 0.1


def active_probabilities(yhat: FloatArray, budget: float) -> FloatArray:
    """Label more where the judge says not harmful (where its misses hide), floored at 0.05."""
    score = np.where(yhat == 0, 3.0, 1.0)
    return np.asarray(np.clip(score / score.mean() * budget, 0.05, 0.95), dtype=np.float64)


def active_replication(rng: np.random.Generator, weighted: bool) -> tuple[float, float, float]:
    """4,000 judged items, about 400 sent to humans (with ~200 the tuned interval's coverage
    was 0.928 in this design: power tuning on the same labels costs a little at small n)."""
    y, yhat = synthetic(rng, (4000,))
    pi = active_probabilities(yhat, 400 / 4000)
    chosen = rng.random(4000) < pi
    w = 1 / pi[chosen] if weighted else None
    w_u = 1 / (1 - pi[~chosen]) if weighted else None
    result = ppi_mean(y[chosen], yhat[chosen], yhat[~chosen], w=w, w_u=w_u)
    low, high = result.interval(0.95)
    return float(result.estimate), float(low), float(high)


@pytest.mark.parametrize("weighted", [True, False])
def test_coverage_with_the_active_policy(weighted: bool) -> None:
    rng = np.random.default_rng(12)
    runs = np.array([active_replication(rng, weighted) for _ in range(1000)])
    coverage = covers(runs[:, 1], runs[:, 2])
    bias = runs[:, 0].mean() - TRUE_RATE
    if weighted:
        assert coverage >= 0.93
        assert abs(bias) < 0.005
    else:  # labels drawn where the judge says "not harmful", taken as a uniform sample
        assert coverage < 0.75
        assert bias < -0.02
