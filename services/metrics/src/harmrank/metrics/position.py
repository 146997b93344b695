"""Position bias: does a judge's ranking depend on where a response was shown?

Two designs, two tests:

* **Seeded orders** (a harmrank run shows each prompt's responses in a recorded random order):
  position is independent of the model, so under no position effect the rank a response gets
  is independent of its position. Test: chi-square test of independence of the
  position x rank-value table (rank 0 = N/A).
* **One fixed order** (the study showed every judge A = Mistral, B = MPT, C = StableLM):
  position and model are the same thing, so the judge's table alone cannot tell a position
  effect from a model effect. The human reference, which did not rank by position, is the
  control: on prompts where the judge and the reference both call two responses harmful but
  order them differently, a judge without a position effect puts the later position on top as
  often as the earlier one. Test: two-sided exact binomial test of those disagreements, 1:1.

Either way the table of ranks per position is reported, and a judge-derived model ranking gets
a warning when the test rejects at ``ALPHA``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import binomtest, chi2_contingency

from harmrank.metrics.rankings import AnnotatorRankings, align

IntArray = npt.NDArray[np.int64]
ALPHA = 0.05


@dataclass(frozen=True)
class PositionBias:
    annotator: str
    design: str  # "fixed order" or "seeded orders"
    counts: tuple[tuple[int, ...], ...]  # [position][rank value 0..k]: how often
    test: str
    statistic: float
    p_value: float
    detected: bool
    detail: str


def rank_table(ranks: IntArray, positions: IntArray) -> IntArray:
    """``out[pos, r]``: how often the response shown at position ``pos`` got rank ``r``."""
    m = ranks.shape[1]
    out = np.zeros((m, m + 1), dtype=np.int64)
    np.add.at(out, (positions.ravel(), ranks.ravel()), 1)
    return out


def seeded_orders(rankings: AnnotatorRankings, positions: IntArray) -> PositionBias:
    """``positions[i, j]``: where model j's response was shown on prompt i (0 = first)."""
    table = rank_table(rankings.ranks, positions)
    used = table[:, table.sum(axis=0) > 0]  # a rank nobody got has no expected count
    statistic, p_value, dof, _ = chi2_contingency(used)
    return PositionBias(
        rankings.annotator,
        "seeded orders",
        tuple(tuple(int(v) for v in row) for row in table),
        "chi-square test of independence, position x rank",
        float(statistic),
        float(p_value),
        bool(p_value < ALPHA),
        f"{len(rankings.prompts)} prompts, {dof} degrees of freedom",
    )


def fixed_order(judge: AnnotatorRankings, reference: AnnotatorRankings) -> PositionBias:
    """The study's design: model j always shown at position j; the reference as control."""
    _, a, r = align(judge, reference)
    i, j = np.triu_indices(a.shape[1], k=1)  # position i shown before position j
    both = (a[:, i] > 0) & (a[:, j] > 0) & (r[:, i] > 0) & (r[:, j] > 0)
    judge_later = a[:, j] > a[:, i]  # the judge calls the later response more harmful
    ref_later = r[:, j] > r[:, i]
    later = int((both & judge_later & ~ref_later).sum())
    earlier = int((both & ~judge_later & ref_later).sum())
    p_value = float(binomtest(later, later + earlier, 0.5).pvalue) if later + earlier else 1.0
    positions = np.broadcast_to(np.arange(judge.ranks.shape[1]), judge.ranks.shape)
    table = rank_table(judge.ranks, np.ascontiguousarray(positions))
    return PositionBias(
        judge.annotator,
        "fixed order",
        tuple(tuple(int(v) for v in row) for row in table),
        f"exact binomial test against {reference.annotator}: disagreements in order",
        float(later / (later + earlier)) if later + earlier else float("nan"),
        p_value,
        bool(p_value < ALPHA),
        f"of the pairs ordered differently from {reference.annotator}, the judge put the later "
        f"response on top {later} times and the earlier {earlier} times",
    )
