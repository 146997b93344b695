"""Chance baselines: A's ranking replaced by a random valid ranking with A's N/A count."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest

from harmrank.metrics.agreement import agreement
from harmrank.metrics.agreement_stats import statistics
from harmrank.metrics.bootstrap import Contributions
from harmrank.metrics.chance import (
    ChanceSpec,
    all_rankings,
    expected_contributions,
    n_rankings,
    random_rankings,
    unique_rows,
)
from harmrank.metrics.contributions import prompt_contributions
from harmrank.metrics.params import AgreementSettings, RBOSettings
from harmrank.metrics.rankings import AnnotatorRankings, ranking_problem

IntArray = npt.NDArray[np.int64]
SETTINGS = RBOSettings(p=0.9)


def contribute(a: IntArray, b: IntArray) -> Contributions:
    return prompt_contributions(a, b, SETTINGS)


def chance_figures(
    a: IntArray, b: IntArray, spec: ChanceSpec
) -> tuple[npt.NDArray[np.float64], str]:
    expected, method = expected_contributions(a, b, contribute, spec)
    return statistics(expected.total())[0], method


def one_prompt(a_row: tuple[int, ...], b_row: tuple[int, ...]) -> tuple[AnnotatorRankings, ...]:
    models = tuple(f"m{j}" for j in range(len(a_row)))
    return tuple(
        AnnotatorRankings.build(name, models, {"p": row})
        for name, row in (("a", a_row), ("b", b_row))
    )


@pytest.mark.parametrize(("m", "k"), [(3, 0), (3, 1), (3, 2), (3, 3), (4, 2), (5, 5)])
def test_all_rankings_are_every_valid_ranking_once(m: int, k: int) -> None:
    rows = all_rankings(m, k)
    assert len(rows) == n_rankings(m, k) == math.comb(m, k) * math.factorial(k)
    assert len({tuple(r) for r in rows}) == len(rows)
    assert all(ranking_problem(list(r), m) is None and (r > 0).sum() == k for r in rows)


def test_random_rankings_are_valid_and_seeded() -> None:
    rows = random_rankings(5, 3, 200, [1, 2])
    assert all(ranking_problem(list(r), 5) is None and (r > 0).sum() == 3 for r in rows)
    np.testing.assert_array_equal(rows, random_rankings(5, 3, 200, [1, 2]))


def test_unique_rows_groups_equal_rows() -> None:
    x = np.array([[1, 0], [0, 1], [1, 0], [2, 2]])
    first, inverse = unique_rows(x)
    np.testing.assert_array_equal(x[first][inverse], x)
    assert len(first) == 3


def test_chance_rbo_of_three_full_rankings_by_hand() -> None:
    # B ranks x, y, z (most harmful first); A is one of the 3! = 6 full rankings. RBO_ext of two
    # 3-lists with the same items is p^3 + (1-p) sum_d A_d p^(d-1), p = 0.9 (weights 0.1, 0.09,
    # 0.081, tail 0.729), agreements A_d = |top-d overlap| / d:
    #   xyz (1, 1, 1) 1.000   xzy (1, 1/2, 1) 0.955   yxz (0, 1, 1) 0.900
    #   yzx (0, 1/2, 1) 0.855 zxy (0, 1/2, 1) 0.855   zyx (0, 1/2, 1) 0.855  <- full reversal
    # Mean: (1 + 0.955 + 0.9 + 3 * 0.855) / 6 = 5.42 / 6 = 0.90333...: a real 0.855 is *below*
    # chance. Exact match by chance is 1/6; tau-b 0 (reversal is as likely as identity).
    a, b = one_prompt((3, 2, 1), (1, 2, 3))
    result = agreement(a, b, AgreementSettings(p=0.9, resamples=10, seed=0))
    for lists in ("harmful", "tied"):
        fig = result.figure("rbo", lists)
        assert fig.value == pytest.approx(0.855)
        assert fig.chance == pytest.approx(5.42 / 6)
    assert result.figure("exact_match").chance == pytest.approx(1 / 6)
    assert result.figure("kendall_tau_b").chance == pytest.approx(0.0, abs=1e-12)


def test_chance_f1_by_hand() -> None:
    # A calls one of 3 models harmful, B calls two: tp is 1 with probability 2/3, else 0;
    # F1 = 2 tp / (K_A + K_B) = 2 tp / 3, so E[F1] = 4/9; precision E[tp]/1 = 2/3; recall 1/3.
    a, b = one_prompt((1, 0, 0), (2, 1, 0))
    result = agreement(a, b, AgreementSettings(p=0.9, resamples=10, seed=0))
    assert result.figure("f1_harmful").chance == pytest.approx(4 / 9)
    assert result.figure("precision_harmful").chance == pytest.approx(2 / 3)
    assert result.figure("recall_harmful").chance == pytest.approx(1 / 3)


def test_plug_in_is_the_exact_expectation_of_the_ratio_statistics() -> None:
    # Enumerate the whole null (every combination of A's alternatives over three prompts) and
    # average each statistic directly: it must equal the statistic of expected contributions,
    # alpha and F1 included (their denominators are fixed under the null).
    a = np.array([[1, 2, 0], [0, 1, 0], [3, 1, 2]])
    b = np.array([[0, 1, 2], [1, 2, 3], [0, 0, 1]])
    plug_in, _ = chance_figures(a, b, ChanceSpec(seed=0))
    alternatives = [all_rankings(3, int(k)) for k in (a > 0).sum(axis=1)]
    direct = [
        statistics(contribute(np.array(combo), b).total())[0]
        for combo in itertools.product(*alternatives)
    ]
    np.testing.assert_allclose(plug_in, np.mean(direct, axis=0), rtol=1e-12, atol=1e-12)


def test_exact_enumeration_equals_a_large_simulation() -> None:
    rng = np.random.default_rng(4)
    pool = np.vstack([all_rankings(4, k) for k in range(5)])
    a, b = pool[rng.integers(0, len(pool), 60)], pool[rng.integers(0, len(pool), 60)]
    exact, exact_method = chance_figures(a, b, ChanceSpec(seed=1))
    simulated, sim_method = chance_figures(
        a, b, ChanceSpec(seed=1, enumeration_limit=0, draws=5_000)
    )
    assert exact_method.startswith("exact")
    assert sim_method.startswith("simulation: 5000 random rankings")
    np.testing.assert_allclose(simulated, exact, atol=0.01)


def test_simulation_when_there_are_too_many_rankings() -> None:
    # 7 harmful of 7 models: 5040 rankings, the default limit; one more model tips it over.
    a = np.array([[1, 2, 3, 4, 5, 6, 7, 8]])
    b = np.array([[8, 7, 6, 5, 4, 3, 2, 1]])
    _, method = chance_figures(a, b, ChanceSpec(seed=3, draws=300))
    assert method.startswith("simulation")
    mixed = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [1, 0, 0, 0, 0, 0, 0, 0]])
    _, method = chance_figures(mixed, np.vstack([b, b]), ChanceSpec(seed=3, draws=300))
    assert method.startswith("exact where at most 5040")


def test_all_na_prompt_keeps_a_fixed_chance() -> None:
    # A says nothing is harmful: its only alternative is itself, so chance equals the figure.
    a, b = one_prompt((0, 0, 0), (1, 0, 2))
    result = agreement(a, b, AgreementSettings(p=0.9, resamples=10, seed=0))
    for fig in result.figures:
        assert (math.isnan(fig.value) and math.isnan(fig.chance)) or fig.chance == pytest.approx(
            fig.value
        )
