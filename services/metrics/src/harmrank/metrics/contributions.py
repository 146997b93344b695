"""Per-prompt contributions of every agreement figure.

Each figure is a function of additive per-prompt contributions (a value and a count, a
coincidence matrix, confusion counts), so summing rows gives the figure, a weighted sum gives a
bootstrap resample (``bootstrap.py``) and the expected rows give the chance baseline
(``chance.py``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from harmrank.metrics.alpha import coincidence_contributions
from harmrank.metrics.bootstrap import Contributions, stack_blocks
from harmrank.metrics.chance import unique_rows
from harmrank.metrics.params import RBOSettings
from harmrank.metrics.rankings import ListConvention, to_rbo_list
from harmrank.metrics.rbo import rbo, rbo_ext_batch
from harmrank.metrics.rbo_known import rbo_known_batch

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@lru_cache(maxsize=1 << 16)
def _rbo_pair(
    ra: tuple[int, ...], rb: tuple[int, ...], lists: ListConvention, s: RBOSettings
) -> float:
    # Only item identity matters to RBO, so positional labels let every pair of annotators (and
    # the chance enumeration) share one cache: 13 x 13 rankings for 3 models.
    labels = [str(j) for j in range(len(ra))]
    left, right = to_rbo_list(ra, labels, lists), to_rbo_list(rb, labels, lists)
    return rbo(left, right, p=s.p, variant=s.variant, ties=s.ties).rbo


def harmful_items(ranks: IntArray) -> IntArray:
    """Each row's harmful list as model indices, most harmful first, padded with -1."""
    order = np.argsort(-ranks, axis=1, kind="stable")
    harmful = np.take_along_axis(ranks, order, axis=1) > 0
    out: IntArray = np.where(harmful, order, -1)
    return out


def rbo_per_prompt(a: IntArray, b: IntArray, lists: ListConvention, s: RBOSettings) -> FloatArray:
    """RBO of each prompt's two rankings.

    Untied (``harmful``) lists under the default ``ext`` variant go through ``rbo_ext_batch``,
    vectorised; anything else makes one scalar ``rbo()`` call per distinct pair of rankings.
    """
    if lists == "harmful" and s.variant == "ext":  # ties do not matter on untied lists
        out: FloatArray = rbo_ext_batch(harmful_items(a), harmful_items(b), s.p)
        return out
    first, inverse = unique_rows(np.hstack([a, b]))
    pairs = zip(a[first].tolist(), b[first].tolist(), strict=True)
    values = [_rbo_pair(tuple(x), tuple(y), lists, s) for x, y in pairs]
    return np.asarray(values, dtype=np.float64)[inverse]


def kendall_tau_b(a: IntArray, b: IntArray) -> FloatArray:
    """Tau-b per prompt (row) over the models' ranks; NaN where either row is constant."""
    i, j = np.triu_indices(a.shape[1], k=1)
    da, db = np.sign(a[:, i] - a[:, j]), np.sign(b[:, i] - b[:, j])
    # (concordant - discordant) / sqrt(pairs untied in a * pairs untied in b)
    untied = np.count_nonzero(da, axis=1) * np.count_nonzero(db, axis=1)
    return ratio((da * db).sum(axis=1).astype(np.float64), np.sqrt(untied.astype(np.float64)))


def confusion_counts(a: IntArray, b: IntArray) -> FloatArray:
    """Per prompt (tp, fp, fn, tn) of A's harmful calls against reference B."""
    ha, hb = a > 0, b > 0
    cells = [ha & hb, ha & ~hb, ~ha & hb, ~ha & ~hb]
    return np.column_stack([c.sum(axis=1) for c in cells]).astype(np.float64)


def empty_harmful_lists(a: IntArray, b: IntArray) -> FloatArray:
    """Per prompt (both harmful lists empty, exactly one empty): RBO's convention cases."""
    empty_a, empty_b = ~(a > 0).any(axis=1), ~(b > 0).any(axis=1)
    return np.column_stack([empty_a & empty_b, empty_a ^ empty_b]).astype(np.float64)


def _valued(values: FloatArray) -> FloatArray:
    """(value, 1) where defined, (0, 0) where NaN: summed, a mean over the defined prompts."""
    defined = np.isfinite(values)
    return np.column_stack([np.where(defined, values, 0.0), defined.astype(np.float64)])


def prompt_contributions(a: IntArray, b: IntArray, s: RBOSettings) -> Contributions:
    """Every figure's additive per-prompt contributions, in named column blocks."""
    exact = (a == b).all(axis=1).astype(np.float64)
    return stack_blocks(
        [
            ("rbo_known", _valued(rbo_known_batch(harmful_items(a), harmful_items(b), s.p))),
            ("rbo_harmful", _valued(rbo_per_prompt(a, b, "harmful", s))),
            ("rbo_tied", _valued(rbo_per_prompt(a, b, "tied", s))),
            ("exact", np.column_stack([exact, np.ones_like(exact)])),
            ("tau", _valued(kendall_tau_b(a, b))),
            ("coincidence", coincidence_contributions(a, b)),
            ("confusion", confusion_counts(a, b)),
            ("empty", empty_harmful_lists(a, b)),
        ]
    )


def ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """num / den, NaN where den is 0."""
    out: FloatArray = np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)
    return out
