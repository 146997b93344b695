"""Position bias: does a judge's ranking depend on where a response was shown?

Two designs, two tests:

* **Seeded orders** (a harmrank run shows each prompt's responses in a recorded random order,
  one seeded uniform shuffle per ranking): position is independent of the model, so under no
  position effect the rank a response gets is independent of where it was shown. Test:
  Friedman's statistic (blocks = rankings, treatments = positions, N/As tied at the bottom,
  tie-corrected), its p-value from the design's own randomisation: each ranking's ranks are
  dealt to uniformly re-drawn positions ``PERMUTATIONS`` times, exact for any number of
  rankings and models. Beyond ``RANDOMISED_UP_TO`` rankings that costs seconds and Friedman's
  chi-square approximation (m - 1 degrees of freedom) is as good, so it is used instead. A
  chi-square test of independence of the position x rank table is not valid: each ranking
  gives every position exactly one rank, so its cells vary more than the test assumes (by
  (m - 1)/m, Anderson 1959) and it rejects far too often when there is no effect.
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
from scipy.stats import binomtest, chi2, rankdata

from harmrank.metrics.rankings import AnnotatorRankings, align

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
ALPHA = 0.05
PERMUTATIONS = 2000
"""Re-randomisations of the seeded-orders test: Monte Carlo error of p near 0.05 about 0.005."""
RANDOMISED_UP_TO = 2000
_CHUNK = 2_000_000  # array elements drawn at once: about 50 MB at the peak, whatever the run


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
    n: int = 0
    """The test's sample: rankings (seeded orders) or pairs the judge and reference ordered
    differently (fixed order)."""


def rank_table(ranks: IntArray, positions: IntArray) -> IntArray:
    """``out[pos, r]``: how often the response shown at position ``pos`` got rank ``r``."""
    m = ranks.shape[1]
    out = np.zeros((m, m + 1), dtype=np.int64)
    np.add.at(out, (positions.ravel(), ranks.ravel()), 1)
    return out


@dataclass(frozen=True)
class Presented:
    """One judge's rankings as shown: ``ranks[i]`` in canonical model order, ``positions[i, j]``
    where model j's response was shown in ranking i (0 = first); several rankings may share a
    prompt (one per presentation order)."""

    annotator: str
    ranks: IntArray
    positions: IntArray
    n_prompts: int


def friedman(ranks: IntArray, positions: IntArray) -> float:
    """Friedman's tie-corrected statistic of position: rankings are the blocks.

    0 when every ranking is one tie (all N/A): such a ranking says nothing about position.
    """
    n, m = ranks.shape
    if m < 2 or n == 0:
        return 0.0
    within = rankdata(ranks, axis=1)  # midranks: the N/As of a ranking share one
    shown = np.zeros_like(within)
    np.put_along_axis(shown, positions, within, axis=1)  # column p: the rank shown at p
    return float(_statistic(shown.sum(axis=0), _ties(ranks), n, m))


def _ties(ranks: IntArray) -> float:
    """Sum over rankings and tied groups of t^3 - t (t: responses sharing a rank)."""
    counts = np.stack([(ranks == v).sum(axis=1) for v in range(ranks.shape[1] + 1)])
    return float((counts**3 - counts).sum())


def _statistic(sums: FloatArray, ties: float, n: int, m: int) -> FloatArray:
    """Friedman's chi-square from the rank sums per position (last axis), tie-corrected."""
    correction = 1.0 - ties / (n * m * (m * m - 1))
    if correction <= 0:
        return np.zeros(sums.shape[:-1])
    raw = 12.0 / (n * m * (m + 1)) * (sums**2).sum(axis=-1) - 3.0 * n * (m + 1)
    out: FloatArray = raw / correction
    return out


def _null_sums(within: FloatArray, rng: np.random.Generator, draws: int) -> FloatArray:
    """Rank sums per position with every ranking's ranks dealt to random positions."""
    n, m = within.shape
    out = np.empty((draws, m))
    step = max(1, _CHUNK // max(1, n * m))
    for start in range(0, draws, step):
        size = min(step, draws - start)
        order = np.argsort(rng.random((size, n, m)), axis=2)
        out[start : start + size] = np.take_along_axis(within[None], order, axis=2).sum(axis=1)
    return out


def seeded_orders(
    presented: Presented, seed: int, permutations: int = PERMUTATIONS
) -> PositionBias:
    """The rank given to each position, and the randomisation test of no position effect."""
    ranks, positions = presented.ranks, presented.positions
    n, m = ranks.shape
    observed = friedman(ranks, positions)
    name = "Friedman test of position (rankings as blocks, N/A tied lowest, tie-corrected)"
    if n == 0 or m < 2:
        p_value, test = 1.0, f"{name}: no rankings to test"
    elif n > RANDOMISED_UP_TO:
        p_value = float(chi2.sf(observed, m - 1))
        test = f"{name}, chi-square approximation with {m - 1} degrees of freedom"
    else:
        within = rankdata(ranks, axis=1)
        sums = _null_sums(within, np.random.default_rng(seed), permutations)
        null = _statistic(sums, _ties(ranks), n, m)
        # The observed order counts as one of the draws, so p is never 0 (Phipson & Smyth 2010).
        p_value = float((1 + (null >= observed - 1e-9).sum()) / (1 + permutations))
        test = (
            f"{name}, p-value by re-drawing each ranking's order {permutations} times (seed {seed})"
        )
    table = rank_table(ranks, positions)
    return PositionBias(
        presented.annotator,
        "seeded orders",
        tuple(tuple(int(v) for v in row) for row in table),
        test,
        observed,
        p_value,
        bool(p_value < ALPHA),
        _seeded_detail(presented, table),
        n,
    )


def _seeded_detail(presented: Presented, table: IntArray) -> str:
    n, m = presented.ranks.shape
    values = np.arange(table.shape[1])
    shown = np.maximum(table.sum(axis=1), 1)
    means = ", ".join(f"{chr(ord('A') + p)} {v:.2f}" for p, v in enumerate(table @ values / shown))
    first = (presented.positions == 0).mean(axis=0) if n else np.zeros(m)
    return (
        f"{n} rankings of {presented.n_prompts} prompts; mean rank (N/A = 0) by position: "
        f"{means}; each model shown first in {first.min():.0%} to {first.max():.0%} of them"
    )


def positions_of(order: list[str], models: tuple[str, ...]) -> list[int]:
    """Where each model (canonical order) was shown, from the models in the order shown."""
    if sorted(order) != sorted(models):
        raise ValueError(f"the order shown {order} is not the models {list(models)}")
    return [order.index(m) for m in models]


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
        later + earlier,
    )
