"""Harm-ranking estimands by human-only, judge-only and PPI++; the label-budget simulation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from harmrank.common.errors import InvalidInput
from harmrank.metrics.harm_rates import harm_rates
from harmrank.metrics.label_budget import BudgetSettings, label_budget
from harmrank.metrics.ppi import ppi_mean
from harmrank.metrics.ppi_estimates import PPIEstimate, outcomes, ppi_estimates
from harmrank.metrics.rankings import AnnotatorRankings, align

MODELS = ("A", "B", "C")


def test_outcomes_by_hand() -> None:
    ranks = np.array([[0, 1, 2], [0, 0, 1], [3, 2, 1]])
    out = outcomes(ranks, MODELS)
    assert list(out.labels) == [
        ("harm_rate", "A"),
        ("harm_rate", "B"),
        ("harm_rate", "C"),
        ("win_rate", "A vs B"),
        ("win_rate", "A vs C"),
        ("win_rate", "B vs C"),
        ("mean_harm_rank", "A"),
        ("mean_harm_rank", "B"),
        ("mean_harm_rank", "C"),
    ]
    assert out.values.mean(axis=0).tolist() == pytest.approx(
        [1 / 3, 2 / 3, 1, (1 + 0.5 + 0) / 3, (1 + 1 + 0) / 3, (1 + 1 + 0) / 3, 1, 1, 4 / 3]
    )


def random_rankings(
    name: str, prompts: Sequence[str], rng: np.random.Generator
) -> AnnotatorRankings:
    rows = {}
    for p in prompts:
        k = int(rng.integers(0, 4))
        ranks = [0, 0, 0]
        for rank, model in enumerate(rng.permutation(3)[:k], start=1):
            ranks[int(model)] = rank
        rows[p] = ranks
    return AnnotatorRankings.build(name, MODELS, rows)


def by_key(rows: list[PPIEstimate]) -> dict[tuple[str, str, str], PPIEstimate]:
    return {(r.estimand, r.subject, r.method): r for r in rows}


def test_estimates_split_labelled_and_unlabelled_prompts() -> None:
    rng = np.random.default_rng(0)
    judge = random_rankings("judge", [f"p{i}" for i in range(100)], rng)
    human = random_rankings("human", [f"p{i}" for i in range(0, 100, 4)] + ["extra"], rng)
    result = ppi_estimates(human, judge, confidence=0.9)
    assert (result.n_human, result.n_judge, result.n_human_not_judged) == (25, 100, 1)
    assert result.policy == "uniform"
    rows = by_key(result.estimates)
    assert len(rows) == 9 * 3
    judged = [i for i, p in enumerate(judge.prompts) if p in set(human.prompts)]
    others = [i for i in range(100) if i not in judged]
    y = (human.ranks[:25, 0] != 0).astype(float)
    yhat = (judge.ranks[judged, 0] != 0).astype(float)
    yhat_u = (judge.ranks[others, 0] != 0).astype(float)
    direct = ppi_mean(y, yhat, yhat_u)
    low, high = direct.interval(0.9)
    ppi = rows[("harm_rate", "A", "ppi")]
    assert (ppi.estimate, ppi.ci_low, ppi.ci_high) == pytest.approx(
        (float(direct.estimate), float(low), float(high))
    )
    assert ppi.lam == pytest.approx(float(direct.lam))
    assert rows[("harm_rate", "A", "human_only")].estimate == pytest.approx(y.mean())
    biased = rows[("harm_rate", "A", "judge_only")]
    assert biased.biased
    assert biased.lam is None
    assert biased.estimate == pytest.approx((judge.ranks[:, 0] != 0).mean())


def test_inclusion_probabilities_become_weights() -> None:
    rng = np.random.default_rng(1)
    judge = random_rankings("judge", [f"p{i}" for i in range(60)], rng)
    human = random_rankings("human", [f"p{i}" for i in range(0, 60, 3)], rng)
    inclusion = {p: (0.5 if i % 2 else 0.2) for i, p in enumerate(judge.prompts)}
    result = ppi_estimates(human, judge, inclusion=inclusion)
    assert "inverse-probability" in result.policy
    labelled = [p for p in judge.prompts if p in set(human.prompts)]
    others = [p for p in judge.prompts if p not in set(human.prompts)]
    y = (human.ranks[:, 1] != 0).astype(float)
    index = {p: i for i, p in enumerate(judge.prompts)}
    yhat = np.array([judge.ranks[index[p], 1] != 0 for p in labelled], dtype=float)
    yhat_u = np.array([judge.ranks[index[p], 1] != 0 for p in others], dtype=float)
    w = np.array([1 / inclusion[p] for p in labelled])
    w_u = np.array([1 / (1 - inclusion[p]) for p in others])
    expected = ppi_mean(y, yhat, yhat_u, w=w, w_u=w_u)
    assert by_key(result.estimates)[("harm_rate", "B", "ppi")].estimate == pytest.approx(
        float(expected.estimate)
    )


def test_bad_input_is_named() -> None:
    rng = np.random.default_rng(2)
    judge = random_rankings("judge", ["a", "b", "c", "d"], rng)
    human = random_rankings("human", ["a", "b"], rng)
    with pytest.raises(InvalidInput, match="no probability for prompt 'c'"):
        ppi_estimates(human, judge, inclusion={"a": 0.5, "b": 0.5})
    with pytest.raises(InvalidInput, match="prompt 'd' has probability 1"):
        ppi_estimates(human, judge, inclusion={"a": 0.5, "b": 0.5, "c": 0.5, "d": 1.0})
    with pytest.raises(InvalidInput, match="at least 2"):
        ppi_estimates(random_rankings("h", ["a"], rng), judge)


def test_label_budget_on_synthetic_data_covers_and_saves_labels() -> None:
    rng = np.random.default_rng(3)
    prompts = [f"p{i}" for i in range(600)]
    human = random_rankings("human", prompts, rng)
    # The judge copies the human 70% of the time and otherwise says "not harmful" to all.
    copy = rng.random(600) < 0.7
    judge = AnnotatorRankings(
        "judge", MODELS, human.prompts, np.where(copy[:, None], human.ranks, 0)
    )
    settings = BudgetSettings(sample_sizes=(50, 200, 600), repetitions=300, seed=4)
    result = label_budget(human, [judge], settings)
    assert result.skipped == {"judge": [600]}
    rows = {(r.estimand, r.model, r.n_human, r.method): r for r in result.rows}
    for n in (50, 200):
        ppi = rows[("harm_rate", "A", n, "ppi")]
        human_only = rows[("harm_rate", "A", n, "human_only")]
        assert ppi.coverage >= 0.9
        assert human_only.coverage >= 0.9
        assert ppi.mean_width < human_only.mean_width
        assert ppi.human_only_equivalent_n is not None
        assert ppi.human_only_equivalent_n > n
        assert rows[("harm_rate", "A", n, "judge_only")].bias < -0.1


def test_label_budget_matches_the_item_level_estimates() -> None:
    """The matrix-product path gives what ppi_mean gives on one subset's items."""
    rng = np.random.default_rng(5)
    prompts = [f"p{i}" for i in range(80)]
    human, judge = random_rankings("h", prompts, rng), random_rankings("j", prompts, rng)
    settings = BudgetSettings(sample_sizes=(20,), repetitions=1, seed=6)
    row = next(
        r
        for r in label_budget(human, [judge], settings).rows
        if (r.estimand, r.model, r.method) == ("mean_harm_rank", "C", "ppi")
    )
    chosen = np.argsort(np.random.default_rng([6, 20]).random((1, 80)), axis=1)[0]
    lab, unl = chosen[:20], chosen[20:]
    values = human.ranks[:, 2].astype(float), judge.ranks[:, 2].astype(float)
    direct = ppi_mean(values[0][lab], values[1][lab], values[1][unl])
    low, high = direct.interval(0.95)
    assert row.mean_width == pytest.approx(float(high - low))
    assert row.bias == pytest.approx(float(direct.estimate) - values[0].mean())


@pytest.fixture(scope="module")
def study_rankings(
    paper_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, AnnotatorRankings]:
    from harmrank.gateway.db.engine import sqlite_url
    from harmrank.gateway.study import import_study
    from harmrank.reproduce.pipeline import store_and_reload

    url = sqlite_url(tmp_path_factory.mktemp("study") / "study.db")
    study = import_study(paper_data)
    _, rankings = asyncio.run(store_and_reload(study, url, label="test", digest="0" * 64))
    return rankings


@pytest.mark.parametrize("judge", ["gpt4o", "claude", "llama"])
def test_judge_only_bias_on_the_study_is_the_direct_difference(
    study_rankings: dict[str, AnnotatorRankings], judge: str
) -> None:
    human, predictor = study_rankings["human"], study_rankings[judge]
    settings = BudgetSettings(sample_sizes=(25,), repetitions=20, seed=0)
    rows = [r for r in label_budget(human, [predictor], settings).rows if r.method == "judge_only"]
    prompts, ranks_h, ranks_j = align(human, predictor)
    on_shared = [
        AnnotatorRankings(n, human.models, prompts, r) for n, r in (("h", ranks_h), ("j", ranks_j))
    ]
    rate_h, rate_j = (1 - harm_rates(a).na_rate for a in on_shared)
    for j, model in enumerate(human.models):
        row = next(r for r in rows if (r.estimand, r.model) == ("harm_rate", model))
        assert row.bias == pytest.approx(rate_j[j] - rate_h[j], abs=1e-12)
    # The example: GPT-4o calls far fewer Mistral-7B responses harmful than humans do.
    if judge == "gpt4o":
        mistral = next(r for r in rows if (r.estimand, r.model) == ("harm_rate", "mistral-7b"))
        assert mistral.bias < -0.15
