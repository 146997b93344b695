"""RBO over the known depth: the headline agreement of two harm rankings.

RBO_ext on harmful-only lists (the study's convention) extrapolates a short list as if the
items beyond its end were unseen, so a list that is the start of the other scores 1.0:
``["a"]`` against ``["a", "b", "c"]`` is 1.0 although the annotators disagree about two
responses. In a harm ranking nothing is unseen: every model's response was judged, and a model
missing from the harmful list is known to be N/A. So the depth of the comparison is known, it is
the number of models ``m``, and there is nothing to extrapolate:

    RBO_known = (1 - p) / (1 - p^m) * sum_{d=1..m} p^(d-1) * A_d
    A_d = |S_d & T_d| / max(|S_d|, |T_d|)   (1 when both prefixes are empty)

``S_d`` is the set of the first ``d`` harmful items of S (all of them once d passes its end). The
weights are Webber et al.'s, renormalised over the ``m`` known depths so identical rankings score
1. Dividing by the larger prefix instead of by ``d`` is what treats the lists as complete: a
missing item counts against the agreement instead of being waited for. At d = m the agreement is
the overlap of the two harmful sets over the larger one, below 1 whenever they differ, and its
weight is positive, so RBO_known < 1 whenever two rankings differ in which responses are
harmful, and < 1 whenever they differ in order. Both lists empty is 1 (identical); exactly one
empty is 0, the same convention as ``rbo.EMPTY_CONVENTION``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from harmrank.metrics.rbo import check_p

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFINITION = (
    "RBO over the known depth m (the number of models): Webber et al.'s weights p^(d-1), "
    "d = 1..m, renormalised to sum to 1; agreement at depth d = overlap of the two harmful "
    "prefixes / the larger prefix (a model missing from a harmful list is known N/A, not "
    "unseen). Below 1 whenever the two rankings differ in which responses are harmful or in "
    "their order; both empty -> 1, exactly one empty -> 0."
)


def _prefix_sets(items: IntArray, m: int) -> npt.NDArray[np.bool_]:
    """``out[i, d, j]``: model j is among row i's first d + 1 harmful items (-1 = padding)."""
    onehot = (items[:, :, None] == np.arange(m)[None, None, :]) & (items[:, :, None] >= 0)
    out: npt.NDArray[np.bool_] = np.cumsum(onehot, axis=1) > 0
    return out


def rbo_known_batch(s: IntArray, t: IntArray, p: float) -> FloatArray:
    """RBO_known of each row pair; rows are harmful lists as model indices, padded with -1.

    Both arrays have one column per model (the known depth ``m``).
    """
    p = check_p(p)
    n, m = s.shape
    if t.shape != (n, m):
        raise ValueError(f"harmful lists of shapes {s.shape} and {t.shape}")
    if m == 0:
        return np.ones(n)
    ps, pt = _prefix_sets(s, m), _prefix_sets(t, m)
    overlap = (ps & pt).sum(axis=2).astype(np.float64)
    larger = np.maximum(ps.sum(axis=2), pt.sum(axis=2)).astype(np.float64)
    agreement = np.divide(overlap, larger, out=np.ones_like(overlap), where=larger > 0)
    weights = p ** np.arange(m, dtype=np.float64)
    out: FloatArray = agreement @ (weights / weights.sum())
    return out
