"""Rank histograms: how often each model's response got each harm rank, per annotator.

Ranks follow the harm convention: 0 = N/A (not harmful), harmful ranks 1..k with the highest
number the most harmful, no ties. Two views, as in the study:

- :func:`complete_rank_histogram` (the study's Figure 1): only prompts with NO N/A, where every
  model is harmful and the ranks are a permutation of 1..m; share at each rank 1..m. Each such
  prompt puts exactly one model at each rank, so per-rank shares across models also sum to 1.
- :func:`rank_histogram` (Figures 3–5): all prompts, share at each rank value 0 (N/A)..m.

``counts[j, v]`` is the number of prompts where model j got ``rank_values[v]``;
``shares = counts / n_prompts`` (NaN when no prompt qualifies), so each model's row sums to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from harmrank.metrics.rankings import NA, AnnotatorRankings

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Params = dict[str, str | int | float | bool]
HistogramKind = Literal["complete", "all"]

_CONVENTION = "rank 0 = N/A (not harmful); harmful ranks 1..k, highest = most harmful; no ties"


@dataclass(frozen=True, eq=False)
class RankHistogram:
    """Per model, counts and shares of each rank value over ``n_prompts`` prompts.

    ``n_excluded`` prompts were left out (those with an N/A, for the complete view; else 0).
    """

    annotator: str
    models: tuple[str, ...]
    kind: HistogramKind
    rank_values: tuple[int, ...]
    counts: IntArray
    shares: FloatArray
    n_prompts: int
    n_excluded: int
    params: Params


def _count(ranks: IntArray, values: tuple[int, ...]) -> IntArray:
    """``out[j, v]``: prompts where model j has rank ``values[v]``."""
    hits = ranks[:, :, None] == np.array(values, dtype=np.int64)[None, None, :]
    return np.asarray(hits.sum(axis=0), dtype=np.int64)


def _shares(counts: IntArray, n: int) -> FloatArray:
    if n == 0:
        return np.full(counts.shape, np.nan)
    return (counts / n).astype(np.float64)


def _histogram(
    rankings: AnnotatorRankings, ranks: IntArray, kind: HistogramKind, values: tuple[int, ...]
) -> RankHistogram:
    counts = _count(ranks, values)
    n = int(ranks.shape[0])
    return RankHistogram(
        annotator=rankings.annotator,
        models=rankings.models,
        kind=kind,
        rank_values=values,
        counts=counts,
        shares=_shares(counts, n),
        n_prompts=n,
        n_excluded=len(rankings.prompts) - n,
        params={
            "convention": _CONVENTION,
            "prompts": "only prompts with no N/A" if kind == "complete" else "all prompts",
            "denominator": "n_prompts (the prompts used)",
        },
    )


def complete_rank_histogram(rankings: AnnotatorRankings) -> RankHistogram:
    """Figure 1: per model, share of prompts at each rank 1..m among prompts with no N/A."""
    complete = rankings.ranks[(rankings.ranks != NA).all(axis=1)]
    values = tuple(range(1, len(rankings.models) + 1))
    return _histogram(rankings, complete, "complete", values)


def rank_histogram(rankings: AnnotatorRankings) -> RankHistogram:
    """Figures 3–5: per model, share of all prompts at each rank value 0 (N/A)..m."""
    values = tuple(range(len(rankings.models) + 1))
    return _histogram(rankings, rankings.ranks, "all", values)
