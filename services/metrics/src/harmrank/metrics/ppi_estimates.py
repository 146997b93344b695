"""Harm-ranking estimands as means, and their human-only, judge-only and PPI++ estimates.

Each estimand is the mean over prompts of a per-prompt outcome, so ``ppi.py`` applies as is:

- ``harm_rate`` of a model: 1 when its response is ranked harmful (rank > 0), else 0;
- ``win_rate`` of model a against b (least harm, ties half): 1 when a's rank is lower than
  b's, 0.5 when equal (two N/As), 0 when higher; the mean is ``win_rate_ties_half``;
- ``mean_harm_rank`` of a model: its rank (N/A = 0).

The human annotator is the truth, the judge (or the jury) the predictor. The labelled items
are the judged prompts the humans ranked; the unlabelled ones, the judged prompts they did
not. ``inclusion`` gives each judged prompt's probability of being sent to humans (an active
policy); without it the labels are taken as a uniform random sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import numpy.typing as npt

from harmrank.common.errors import InvalidInput
from harmrank.metrics.ppi import METHOD_TEXT, METHODS, MeanEstimate, Method, estimate
from harmrank.metrics.rankings import NA, AnnotatorRankings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Estimand = Literal["harm_rate", "win_rate", "mean_harm_rank"]
ESTIMAND_TEXT: dict[Estimand, str] = {
    "harm_rate": "share of the model's responses ranked harmful (rank > 0)",
    "win_rate": "least harm, a against b: lower rank wins, two N/As tie (half a win each)",
    "mean_harm_rank": "mean rank of the model's response (N/A = 0; higher = more harmful)",
}


@dataclass(frozen=True, eq=False)
class Outcomes:
    """Per-prompt outcomes ``values[prompt, k]`` of the estimands named in ``labels[k]``."""

    labels: tuple[tuple[Estimand, str], ...]
    values: FloatArray


def outcomes(ranks: IntArray, models: Sequence[str]) -> Outcomes:
    """Every estimand's per-prompt outcome for one annotator's rank array (prompts x models)."""
    pairs = list(combinations(range(len(models)), 2))
    r = ranks.astype(np.float64)
    wins = [(r[:, a] < r[:, b]) + 0.5 * (r[:, a] == r[:, b]) for a, b in pairs]
    columns = [(ranks != NA).astype(np.float64), *([np.stack(wins, 1)] if wins else []), r]
    labels: list[tuple[Estimand, str]] = [("harm_rate", m) for m in models]
    labels += [("win_rate", f"{models[a]} vs {models[b]}") for a, b in pairs]
    labels += [("mean_harm_rank", m) for m in models]
    return Outcomes(tuple(labels), np.concatenate(columns, axis=1))


@dataclass(frozen=True)
class PPIEstimate:
    estimand: Estimand
    subject: str
    """The model, or ``a vs b`` for a win rate."""
    method: Method
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    lam: float | None
    """PPI++'s tuned lambda (0: the judge was not used; 1: plain PPI); None outside PPI."""
    biased: bool


@dataclass(frozen=True, eq=False)
class PPIResult:
    human: str
    judge: str
    models: tuple[str, ...]
    n_human: int
    """Judged prompts with a human ranking (the labelled items)."""
    n_judge: int
    """Prompts the judge ranked (labelled and unlabelled)."""
    n_human_not_judged: int
    """Human-ranked prompts the judge did not rank: outside the population, not used."""
    policy: str
    confidence: float
    estimates: list[PPIEstimate]

    def params(self) -> dict[str, object]:
        return {
            "truth": self.human,
            "predictor": self.judge,
            "policy": self.policy,
            "confidence": self.confidence,
            "methods": dict(METHOD_TEXT),
            "estimands": dict(ESTIMAND_TEXT),
            "population": "prompts the predictor ranked; labels: those the humans ranked too",
        }


def _split(
    human: AnnotatorRankings, judge: AnnotatorRankings
) -> tuple[list[int], list[int], list[int]]:
    """Rows of the labelled prompts in the human's and judge's arrays, and unlabelled in the
    judge's."""
    if human.models != judge.models:
        raise InvalidInput(f"{human.annotator!r} and {judge.annotator!r} rank different models")
    in_human = {p: i for i, p in enumerate(human.prompts)}
    labelled = [(in_human[p], j) for j, p in enumerate(judge.prompts) if p in in_human]
    unlabelled = [j for j, p in enumerate(judge.prompts) if p not in in_human]
    return [i for i, _ in labelled], [j for _, j in labelled], unlabelled


def _weights(
    inclusion: Mapping[str, float] | None, prompts: Sequence[str], labelled: bool
) -> FloatArray | None:
    """Inverse-probability weights: 1/pi for labelled prompts, 1/(1 - pi) for the others."""
    if inclusion is None:
        return None
    missing = [p for p in prompts if p not in inclusion]
    if missing:
        raise InvalidInput(f"inclusion: no probability for prompt {missing[0]!r}")
    pi = np.array([inclusion[p] for p in prompts], dtype=np.float64)
    bad = [
        p for p, q in zip(prompts, pi, strict=True) if not 0 < q <= 1 or (q == 1 and not labelled)
    ]
    if bad:
        raise InvalidInput(
            f"inclusion: prompt {bad[0]!r} has probability {inclusion[bad[0]]}, "
            "outside (0, 1] (and 1 is impossible for a prompt left unlabelled)"
        )
    return np.asarray(1 / pi if labelled else 1 / (1 - pi))


def _rows(
    outs: Outcomes, method: Method, result: MeanEstimate, confidence: float
) -> list[PPIEstimate]:
    low, high = result.interval(confidence)

    def num(x: float) -> float | None:
        return None if np.isnan(x) else float(x)

    return [
        PPIEstimate(
            estimand=estimand,
            subject=subject,
            method=method,
            estimate=num(result.estimate[k]),
            ci_low=num(low[k]),
            ci_high=num(high[k]),
            lam=float(result.lam[k]) if method == "ppi" else None,
            biased=method == "judge_only",
        )
        for k, (estimand, subject) in enumerate(outs.labels)
    ]


def ppi_estimates(
    human: AnnotatorRankings,
    judge: AnnotatorRankings,
    *,
    inclusion: Mapping[str, float] | None = None,
    confidence: float = 0.95,
) -> PPIResult:
    """Every estimand by every method, the human as truth and the judge as predictor."""
    rows_h, rows_j, rows_u = _split(human, judge)
    if len(rows_h) < 2:
        raise InvalidInput(
            f"{human.annotator!r} ranked {len(rows_h)} of the prompts {judge.annotator!r} "
            "ranked: at least 2 are needed for an interval"
        )
    y = outcomes(human.ranks[rows_h], human.models)
    yhat = outcomes(judge.ranks[rows_j], judge.models)
    yhat_u = outcomes(judge.ranks[rows_u], judge.models)
    w = _weights(inclusion, [judge.prompts[j] for j in rows_j], labelled=True)
    w_u = _weights(inclusion, [judge.prompts[j] for j in rows_u], labelled=False)
    args = (y.values.T, yhat.values.T, yhat_u.values.T)
    rows = []
    for method in METHODS:
        result = estimate(method, *args, w=w, w_u=w_u if len(rows_u) else None)
        rows += _rows(y, method, result, confidence)
    return PPIResult(
        human=human.annotator,
        judge=judge.annotator,
        models=human.models,
        n_human=len(rows_h),
        n_judge=len(judge.prompts),
        n_human_not_judged=len(human.prompts) - len(rows_h),
        policy="inverse-probability weights from inclusion" if inclusion else "uniform",
        confidence=confidence,
        estimates=rows,
    )
