"""How many human labels? Subsample the humans, take the full human data as the truth.

For each predictor (a judge or the jury) the population is the prompts both the humans and the
predictor ranked; the truth of each estimand is the humans' mean over all of them. For each
``n`` the humans' labels are kept on ``repetitions`` seeded uniform random subsets of ``n``
prompts (the predictor keeps all its labels), and each method's interval is computed on each
subset. Reported per estimand, predictor, ``n`` and method:

- ``coverage``: share of repetitions whose interval holds the truth;
- ``mean_width``: mean interval width; ``bias``: mean estimate minus the truth;
- for PPI, ``human_only_equivalent_n``: the human-only ``n`` with the same mean width as PPI at
  ``n`` (human-only width shrinks as 1/sqrt(n), so ``n * (width_human / width_ppi) ** 2``).

The judge-only estimate uses every prompt of the population, so it is the same in every
repetition: its bias is exactly the predictor's mean minus the humans'.

All repetitions and estimands of one ``n`` are one matrix product: the 0/1 matrix of the
subsets (repetitions x prompts) times the per-prompt products PPI++ needs (``ppi.Moments``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from harmrank.metrics.ppi import MeanEstimate, Method, Moments, from_moments, judge_only
from harmrank.metrics.ppi_estimates import Estimand, Outcomes, outcomes
from harmrank.metrics.rankings import AnnotatorRankings, align

FloatArray = npt.NDArray[np.float64]
SAMPLE_SIZES = (25, 50, 100, 200, 400)


@dataclass(frozen=True)
class BudgetSettings:
    sample_sizes: tuple[int, ...] = SAMPLE_SIZES
    repetitions: int = 500
    seed: int = 0
    confidence: float = 0.95

    def stated(self) -> str:
        return (
            f"human labels subsampled uniformly without replacement, n in "
            f"{list(self.sample_sizes)}, {self.repetitions} repetitions each, seed {self.seed}; "
            f"{self.confidence:.0%} intervals; truth = the humans' mean over every prompt the "
            "humans and the predictor both ranked (a finite population sampled without "
            "replacement: the intervals, without a finite-population correction, over-cover as "
            "n nears it)"
        )


@dataclass(frozen=True)
class BudgetRow:
    estimand: Estimand
    model: str
    judge: str
    n_human: int
    method: Method
    coverage: float
    mean_width: float
    bias: float
    human_only_equivalent_n: float | None = None


@dataclass(frozen=True, eq=False)
class LabelBudget:
    settings: BudgetSettings
    rows: list[BudgetRow]
    population: dict[str, int]
    """Prompts in each predictor's population."""
    skipped: dict[str, list[int]]
    """Sample sizes not run for a predictor because its population is not larger."""


def _subsets(n_items: int, n: int, settings: BudgetSettings) -> FloatArray:
    """Seeded uniform subsets of size n: a 0/1 matrix (repetitions x items).

    Each row keeps the items with the n smallest of iid uniform keys (a uniform n-subset);
    a partial sort finds the n-th smallest, which is all that is needed.
    """
    rng = np.random.default_rng([settings.seed, n])
    keys = rng.random((settings.repetitions, n_items))
    nth = np.partition(keys, n - 1, axis=1)[:, n - 1 : n]
    return (keys <= nth).astype(np.float64)


def _moments(chosen: FloatArray, y: FloatArray, h: FloatArray) -> Moments:
    """Each subset's moments (unweighted) from one matrix product of the 0/1 subset matrix."""
    n, n_items, k = int(chosen[0].sum()), len(y), y.shape[1]
    sums = chosen @ np.concatenate([y, h, y * y, y * h, h * h], axis=1)
    wy, wh, wwyy, wwyh, wwhh = (sums[:, i * k : (i + 1) * k] / n for i in range(5))
    big_n = n_items - n
    uh = (h.sum(axis=0) - n * wh) / big_n
    uuhh = ((h * h).sum(axis=0) - n * wwhh) / big_n
    ones = np.ones_like(wy)
    return Moments(n, big_n, wy, wh, wwyy, wwyh, wwhh, wy, wh, ones, uh, uuhh, uh, ones)


def _rows(
    stats: dict[Method, tuple[FloatArray, FloatArray, FloatArray]],
    labels: Sequence[tuple[Estimand, str]],
    n: int,
    judge: str,
) -> list[BudgetRow]:
    ratio = stats["human_only"][1] / stats["ppi"][1]
    return [
        BudgetRow(
            estimand=estimand,
            model=subject,
            judge=judge,
            n_human=n,
            method=method,
            coverage=float(covered[k]),
            mean_width=float(width[k]),
            bias=float(bias[k]),
            human_only_equivalent_n=float(n * ratio[k] ** 2) if method == "ppi" else None,
        )
        for method, (covered, width, bias) in stats.items()
        for k, (estimand, subject) in enumerate(labels)
    ]


def _one_n(
    y: Outcomes, yhat: Outcomes, chosen: FloatArray, judge: str, s: BudgetSettings
) -> list[BudgetRow]:
    truth = y.values.mean(axis=0)
    m = _moments(chosen, y.values, yhat.values)
    every = yhat.values.T[None]  # the judge labelled the whole population: one estimate
    results: dict[Method, MeanEstimate] = {
        "human_only": from_moments(m, lam=0.0),
        "judge_only": judge_only(every, every[..., :0]),
        "ppi": from_moments(m),
    }
    stats: dict[Method, tuple[FloatArray, FloatArray, FloatArray]] = {}
    for method, result in results.items():
        low, high = result.interval(s.confidence)
        covered = ((low <= truth) & (truth <= high)).mean(axis=0)
        stats[method] = (covered, (high - low).mean(axis=0), result.estimate.mean(axis=0) - truth)
    return _rows(stats, y.labels, m.n, judge)


def label_budget(
    human: AnnotatorRankings,
    predictors: Mapping[str, AnnotatorRankings] | Sequence[AnnotatorRankings],
    settings: BudgetSettings | None = None,
) -> LabelBudget:
    """The whole simulation for every predictor."""
    settings = settings or BudgetSettings()
    named = predictors if isinstance(predictors, Mapping) else {p.annotator: p for p in predictors}
    rows: list[BudgetRow] = []
    population: dict[str, int] = {}
    skipped: dict[str, list[int]] = {}
    # Predictors with populations of one size share the draws (the seed depends on n only).
    draws: dict[tuple[int, int], FloatArray] = {}
    for name, judge in named.items():
        _, ranks_h, ranks_j = align(human, judge)
        y, yhat = outcomes(ranks_h, human.models), outcomes(ranks_j, human.models)
        population[name] = len(ranks_h)
        skipped[name] = [n for n in settings.sample_sizes if n >= len(ranks_h) or n < 2]
        for n in settings.sample_sizes:
            if n not in skipped[name]:
                key = (len(ranks_h), n)
                if key not in draws:
                    draws[key] = _subsets(len(ranks_h), n, settings)
                rows += _one_n(y, yhat, draws[key], name, settings)
    return LabelBudget(settings, rows, population, skipped)
