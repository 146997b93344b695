"""The label-budget policy: probabilities floored, summing to the budget, draws by seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmrank.gateway.annotation.sampling import drawn, probabilities, score, uniform_draw

scores_st = st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(scores=scores_st, budget=st.integers(1, 80), floor=st.floats(0.01, 1))
def test_probabilities_are_floored_capped_and_sum_to_the_budget(
    scores: list[float], budget: int, floor: float
) -> None:
    pi = probabilities(scores, budget, floor)
    n = len(scores)
    assert pi.shape == (n,)
    assert pi.sum() == pytest.approx(min(budget, n))
    assert (pi <= 1 + 1e-12).all()
    assert (pi >= min(1.0, floor * budget / n) - 1e-12).all()


@settings(max_examples=100, deadline=None)
@given(scores=scores_st, budget=st.integers(1, 80), floor=st.floats(0.01, 1))
def test_a_higher_score_never_gets_a_lower_probability(
    scores: list[float], budget: int, floor: float
) -> None:
    pi = probabilities(scores, budget, floor)
    order = np.argsort(scores, kind="stable")
    assert (np.diff(pi[order]) >= -1e-12).all()


def test_hand_computed_probabilities() -> None:
    # 4 items, budget 2, floor 0.5: pi = 2 * (0.5 / 4 + 0.5 * share)
    assert probabilities([1, 1, 0, 2], 2, 0.5) == pytest.approx([0.5, 0.5, 0.25, 0.75])
    # Uniform (floor 1, or all scores 0) is budget / N.
    assert probabilities([3, 0, 1], 1, 1.0) == pytest.approx([1 / 3] * 3)
    assert probabilities([0, 0], 1, 0.2) == pytest.approx([0.5, 0.5])
    # Over the cap: the first item would get 2 * (0.1 / 3 + 0.9) > 1; the rest share 1.
    assert probabilities([1, 0, 0], 2, 0.1) == pytest.approx([1, 0.5, 0.5])
    assert probabilities([1, 2], 5, 0.2) == pytest.approx([1, 1])


def test_the_score_adds_disagreement_and_uncertainty() -> None:
    agree = {"a": [[1, 0, 0]], "b": [[1, 0, 0]]}
    assert score(agree) == 0
    # Two judges apart by one rank on two of three models: var 0.25 each, mean 1/6, / (3/2)^2.
    apart = {"a": [[1, 0, 0]], "b": [[0, 0, 1]]}
    assert score(apart) == pytest.approx((0.5 / 3) / 2.25)
    # One judge unsure across two presentation orders: the same spread, as uncertainty.
    unsure = {"a": [[1, 0, 0], [0, 0, 1]]}
    assert score(unsure) == pytest.approx((0.5 / 3) / 2.25)
    assert score({}) == 0


@given(seed=st.integers(0, 2**31 - 1), item=st.integers(1, 10**9))
def test_draws_are_deterministic_by_seed(seed: int, item: int) -> None:
    u = uniform_draw(seed, item)
    assert 0 <= u < 1
    assert u == uniform_draw(seed, item)
    assert drawn(seed, item, 1.0)


def test_draws_hit_the_budget_in_expectation() -> None:
    pi = probabilities(np.linspace(0, 1, 200).tolist(), 40, 0.3)
    counts = [sum(drawn(seed, i, p) for i, p in enumerate(pi)) for seed in range(300)]
    # Poisson sampling: mean sum(pi) = 40, sd sqrt(sum pi (1 - pi)) / sqrt(300) of the mean.
    sd = float(np.sqrt((pi * (1 - pi)).sum() / 300))
    assert abs(np.mean(counts) - 40) < 4 * sd
    freq = np.mean([[drawn(seed, i, p) for seed in range(300)] for i, p in enumerate(pi)], axis=1)
    assert np.corrcoef(freq, pi)[0, 1] > 0.9
    assert uniform_draw(1, 5) != uniform_draw(2, 5)
