"""Chance baselines: what an agreement figure would be if annotator A ranked at random.

Null model: on each prompt, A's ranking is replaced by a uniformly random *valid* ranking with
the same number of N/As as A's (k harmful of m models: ``C(m, k) * k! = m! / (m - k)!``
rankings, each equally likely); B's ranking stays fixed; prompts are independent.

How each figure's chance value is computed:

* Per prompt, the expected additive contributions (RBO value, tau value, exact match,
  coincidence matrix, confusion counts) are the mean over *all* rankings with k harmful when there
  are at most ``enumeration_limit`` of them ("exact"), else over ``draws`` seeded random ones
  ("simulation"). The figure's chance value is its statistic applied to the summed expectations.
* That plug-in is the exact expectation of the statistic (no simulation of ratios needed),
  because every figure is a ratio whose denominator is fixed under the null:
  - mean RBO and mean tau-b: which prompts are defined depends only on list lengths / on k;
  - exact match and accuracy: the number of prompts / cells;
  - precision = tp / K_A, recall = tp / K_B and F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (K_A + K_B),
    with K_A, K_B the two annotators' harmful counts (A keeps its N/A counts);
  - ordinal alpha = 1 - (n.. - 1) D_o / D_e: the coincidence marginals are the two annotators'
    value multisets, fixed under the null, so D_e is fixed and D_o is linear in the coincidences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import permutations

import numpy as np
import numpy.typing as npt

from harmrank.metrics.bootstrap import Contributions

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ContributeFn = Callable[[IntArray, IntArray], Contributions]


@dataclass(frozen=True)
class ChanceSpec:
    seed: int
    enumeration_limit: int = 5040  # 7!: enumerating more rankings per prompt type costs too much
    draws: int = 1000


def n_rankings(n_models: int, k: int) -> int:
    """How many valid rankings give exactly k of n_models models a harmful rank."""
    return math.perm(n_models, k)


@lru_cache(maxsize=128)
def all_rankings(n_models: int, k: int) -> IntArray:
    """Every valid ranking with k harmful models, shape ``(n_rankings, n_models)``."""
    out = np.zeros((n_rankings(n_models, k), n_models), dtype=np.int64)
    for row, chosen in enumerate(permutations(range(n_models), k)):
        out[row, list(chosen)] = np.arange(1, k + 1)  # chosen[i] gets rank i + 1
    out.setflags(write=False)
    return out


def random_rankings(n_models: int, k: int, draws: int, seed: list[int]) -> IntArray:
    """``draws`` uniformly random valid rankings with k harmful models."""
    order = np.argsort(np.random.default_rng(seed).random((draws, n_models)), axis=1)
    out = np.zeros((draws, n_models), dtype=np.int64)
    rows = np.arange(draws)
    for i in range(k):
        out[rows, order[:, i]] = i + 1
    return out


def null_rankings(
    n_models: int, k: int, b_row: IntArray, spec: ChanceSpec
) -> tuple[IntArray, bool]:
    """A's alternatives on one prompt type, and whether they are the full enumeration."""
    if n_rankings(n_models, k) <= spec.enumeration_limit:
        return all_rankings(n_models, k), True
    # Seeded per prompt type so the result does not depend on which other prompts are present.
    seed = [spec.seed, k, *(int(x) for x in b_row)]
    return random_rankings(n_models, k, spec.draws, seed), False


def unique_rows(x: IntArray) -> tuple[IntArray, IntArray]:
    """First index of each distinct row of a non-negative int array, and each row's group.

    Rows are packed into one integer when they fit, because ``np.unique(axis=0)`` sorts a
    structured view and costs far more than the figures it feeds.
    """
    base = int(x.max(initial=0)) + 1
    if x.shape[1] * math.log2(base) < 62:
        codes = x @ (base ** np.arange(x.shape[1], dtype=np.int64))
    else:
        codes = np.unique(x, axis=0, return_inverse=True)[1].reshape(-1)
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def expected_contributions(
    a: IntArray, b: IntArray, contribute: ContributeFn, spec: ChanceSpec
) -> tuple[Contributions, str]:
    """Per-prompt expected contributions under the null, and a description of how they were got.

    Prompts sharing (A's harmful count, B's ranking) share the expectation, so each such type is
    computed once (13 B rankings x 4 counts at most for 3 models).
    """
    k_a = (a > 0).sum(axis=1)
    first, inverse = unique_rows(np.column_stack([k_a, b]))
    alts, exact = _alternatives(k_a[first], b[first], spec)
    b_rows = [np.repeat(b[i][None, :], len(x), axis=0) for i, x in zip(first, alts, strict=True)]
    contrib = contribute(np.vstack(alts), np.vstack(b_rows))
    sizes = np.array([len(x) for x in alts])
    means = np.add.reduceat(contrib.data, np.r_[0, np.cumsum(sizes)[:-1]], axis=0) / sizes[:, None]
    per_prompt = Contributions(means[inverse], contrib.layout)
    return per_prompt, _describe(exact, spec)


def _alternatives(
    k_a: IntArray, b_rows: IntArray, spec: ChanceSpec
) -> tuple[list[IntArray], list[bool]]:
    m = b_rows.shape[1]
    pairs = [null_rankings(m, int(k), row, spec) for k, row in zip(k_a, b_rows, strict=True)]
    return [alts for alts, _ in pairs], [exact for _, exact in pairs]


def _describe(exact: list[bool], spec: ChanceSpec) -> str:
    if all(exact):
        return "exact: mean over every valid ranking of A with A's N/A count, per prompt"
    sim = f"simulation: {spec.draws} random rankings per prompt type, seed {spec.seed}"
    if not any(exact):
        return sim
    return f"exact where at most {spec.enumeration_limit} rankings per prompt, else {sim}"
