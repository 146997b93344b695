"""Which items go to humans under a label budget: pure functions, no I/O.

Every item is drawn on its own (Poisson sampling) with its probability ``pi``, and the
probabilities sum to the budget, so the expected number of items sent to humans is the budget.
Independent draws are what the estimator's weights assume (``1/pi`` for a labelled item,
``1/(1 - pi)`` for one left to the judges: Zrnic & Candès, "Active statistical inference",
2024), and they let an item that appears later be drawn without touching the others.

- ``uniform``: ``pi = budget / N`` for every item.
- ``active``: more probability where the judges are least sure: ``score`` is their disagreement
  with each other plus their uncertainty (disagreement with themselves across presentation
  orders), and ``pi`` is a mixture ``budget * ((1 - a) / N + a * score / sum(score))`` whose
  uniform part ``1 - a`` is the ``floor``: every item keeps at least ``floor * budget / N``.
  Probabilities above 1 are capped and their excess spread over the others.

A draw is a hash of the seed and the item, so it is deterministic by seed and independent
across items.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

Policy = Literal["uniform", "active"]
FloatArray = npt.NDArray[np.float64]
Ranks = Sequence[int]


def _spread(rankings: Sequence[Ranks]) -> float:
    """Mean over models of the variance of their ranks, scaled to [0, 1] by the largest
    variance ranks 0..m can have ((m / 2) ** 2); 0 for fewer than two rankings."""
    if len(rankings) < 2:
        return 0.0
    ranks = np.asarray(rankings, dtype=np.float64)
    m = ranks.shape[1]
    return float(ranks.var(axis=0).mean() / (m / 2) ** 2)


def score(by_judge: Mapping[str, Sequence[Ranks]]) -> float:
    """How unsure the judges are of one item: the spread of their (mean) ranks across judges
    plus the mean spread of each judge's ranks across its presentation orders, in [0, 2]."""
    judged = [r for r in by_judge.values() if r]
    if not judged:
        return 0.0
    means = [np.asarray(r, dtype=np.float64).mean(axis=0).tolist() for r in judged]
    uncertainty = float(np.mean([_spread(r) for r in judged]))
    return _spread(means) + uncertainty


def probabilities(scores: Sequence[float], budget: int, floor: float = 1.0) -> FloatArray:
    """Inclusion probabilities summing to ``min(budget, N)``, each at least
    ``floor * budget / N`` (capped at 1); ``floor = 1`` (or all scores equal) is uniform."""
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    if n == 0:
        return s
    if budget >= n:
        return np.ones(n)
    share = s / s.sum() if s.sum() > 0 else np.full(n, 1 / n)
    pi = budget * (floor / n + (1 - floor) * share)
    return _capped(pi, float(budget))


def _capped(pi: FloatArray, total: float) -> FloatArray:
    """Cap at 1 and give the excess to the uncapped items in proportion to their probability
    (which keeps every floor); at most N rounds since each caps one more item or stops."""
    pi = pi.copy()
    for _ in range(len(pi)):
        over = pi >= 1
        pi[over] = 1.0
        free = ~over
        rest = total - over.sum()
        if not free.any() or pi[free].sum() <= 0:
            break
        pi[free] *= rest / pi[free].sum()
        if (pi[free] <= 1).all():
            break
    return np.minimum(pi, 1.0)


def uniform_draw(seed: int, item: int) -> float:
    """The item's uniform number in [0, 1) for this seed."""
    digest = hashlib.sha256(f"sample:{seed}:{item}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def drawn(seed: int, item: int, pi: float) -> bool:
    """Whether the item goes to humans: its uniform number falls below its probability."""
    return uniform_draw(seed, item) < pi
