"""Percentile bootstrap over prompts, computed as one matrix product.

Every agreement figure is a function of per-prompt *additive* contributions (a sum of per-prompt
values and a count, a coincidence matrix, confusion counts). A bootstrap resample of prompts is
then a vector of multiplicities ``w`` (multinomial counts summing to ``n``) and the resample's
contributions are ``w @ contributions``: all ``R`` resamples at once are ``W @ C`` with ``W`` of
shape ``(R, n)``. Re-computing a statistic on an explicitly resampled dataset gives the same
number (tests check this for alpha and F1). ``W`` is kept as integer counts and multiplied a few
rows at a time, exactly per slice of the contributions (``resamples.py``), so its memory is a
byte a count rather than 8 and the product's result does not depend on the grouping of rows.

Interval: the plain percentile interval (the ``(1 - level) / 2`` and ``(1 + level) / 2``
quantiles of the resampled statistic, numpy's default linear interpolation). Resamples where a
statistic is undefined (NaN) are left out of its quantiles.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from harmrank.common.errors import InvalidInput
from harmrank.metrics.resamples import CountArray, Resamples

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Seed = int | tuple[int, ...]


@dataclass(frozen=True)
class Contributions:
    """Per-row additive contributions ``data`` (rows x K), named column blocks in ``layout``."""

    data: FloatArray
    layout: Mapping[str, slice]

    def __getitem__(self, name: str) -> FloatArray:
        return self.data[:, self.layout[name]]

    def column(self, name: str, j: int = 0) -> FloatArray:
        block: FloatArray = self[name][:, j]
        return block

    def take(self, rows: npt.NDArray[np.int64]) -> Contributions:
        return Contributions(self.data[rows], self.layout)

    def total(self) -> Contributions:
        return Contributions(self.data.sum(axis=0, keepdims=True), self.layout)

    def weighted(self, weights: Resamples) -> Contributions:
        """``W @ data``: one row per resample."""
        return Contributions(weights.times(self.data), self.layout)


def stack_blocks(blocks: Sequence[tuple[str, FloatArray]]) -> Contributions:
    """Glue ``(name, (n, width))`` blocks side by side, remembering where each one sits."""
    layout: dict[str, slice] = {}
    start = 0
    for name, block in blocks:
        layout[name] = slice(start, start + block.shape[1])
        start += block.shape[1]
    return Contributions(np.hstack([block for _, block in blocks]), layout)


@dataclass(frozen=True)
class BootstrapSpec:
    resamples: int
    seed: int
    confidence: float = 0.95
    stratum: str | None = None  # a category: resample within its prompts only
    cluster_key: str | None = None  # resample whole clusters of prompts (e.g. annotation groups)

    def __post_init__(self) -> None:
        if self.resamples < 0:
            raise InvalidInput(f"resamples must be 0 (no intervals) or more, got {self.resamples}")
        if not 0.0 < self.confidence < 1.0:
            raise InvalidInput(f"confidence must be in (0, 1), got {self.confidence}")

    def within(self, stratum: str) -> BootstrapSpec:
        return replace(self, stratum=stratum)

    def clustered(self, key: str | None) -> BootstrapSpec:
        return replace(self, cluster_key=key)

    @property
    def weight_seed(self) -> Seed:
        """The seed of the weight draw; a stratum's mixes in a stable hash of its name, so its
        resamples do not depend on which other categories exist."""
        if self.stratum is None:
            return self.seed
        return (self.seed, zlib.crc32(self.stratum.encode()))

    def method(self) -> str:
        if self.resamples == 0:
            return "no bootstrap (0 resamples): intervals are undefined"
        where = "prompts" if self.stratum is None else f"the prompts of category {self.stratum!r}"
        if self.cluster_key is not None:
            where = f"clusters ({self.cluster_key}) of {where}, whole clusters drawn"
        seed = self.seed if self.stratum is None else f"({self.seed}, crc32 of the category)"
        return (
            f"percentile bootstrap over {where}, {self.resamples} resamples, seed {seed}, "
            f"confidence {self.confidence:g}"
        )

    def params(self) -> dict[str, object]:
        return {
            "bootstrap_method": self.method(),
            "resamples": self.resamples,
            "seed": self.seed,
            "confidence": self.confidence,
            "bootstrap_unit": self.cluster_key or "prompt",
        }


def resample_weights(n: int, resamples: int, seed: Seed) -> Resamples:
    """Multiplicities of ``n`` prompts in each of ``resamples`` resamples: ``(R, n)`` counts.

    Cached (and read-only) because every pair sharing the same prompt count reuses the draw, and
    the multinomial draw dominates the cost of a report.
    """
    key = (n, resamples, seed)
    with _WEIGHTS_LOCK:  # the service computes reports in a thread pool
        found = _WEIGHTS.get(key)
        if found is not None:
            _WEIGHTS.move_to_end(key)
            return Resamples(found)
    found = _draw_counts(n, resamples, seed)
    with _WEIGHTS_LOCK:
        _remember(key, found)
    return Resamples(found)


_DRAW_CELLS = 1_000_000
"""Counts drawn at a time (8 MB of int64): the draw is stored a few rows at a time, so it never
holds an int64 copy of the whole matrix as well."""

_WEIGHTS_CACHE_BYTES = 128 * 1024 * 1024
"""The cache keeps the most recently used draws up to this size, and always the newest one: a
count of entries would let a long-lived service keep many large draws of past runs. Draws are
counted at their compact size (one byte a count: 1,000 resamples of 50,000 prompts are 50 MB)."""

_WEIGHTS: OrderedDict[tuple[int, int, Seed], CountArray] = OrderedDict()
_WEIGHTS_LOCK = threading.Lock()


def clear_weights_cache() -> None:
    """Forget every cached draw (for timing a cold report)."""
    with _WEIGHTS_LOCK:
        _WEIGHTS.clear()


def _draw_counts(n: int, resamples: int, seed: Seed) -> CountArray:
    rng = np.random.default_rng(seed)
    counts: CountArray = np.empty((resamples, n), dtype=np.uint8)
    rows = max(1, _DRAW_CELLS // max(n, 1))
    for start in range(0, resamples, rows):
        # Consecutive draws from one generator give the rows one draw of all would.
        size = min(rows, resamples - start)
        drawn = rng.multinomial(n, [1.0 / n] * n, size=size)
        counts = _widened(counts, int(drawn.max(initial=0)), n)
        counts[start : start + size] = drawn
    counts.setflags(write=False)
    return counts


def _widened(counts: CountArray, largest: int, n: int) -> CountArray:
    """``counts`` in a type that holds ``largest``. A prompt drawn 256 times among 1/n chances
    is all but impossible, so one byte a count almost always does; a count never exceeds n."""
    if largest <= np.iinfo(counts.dtype).max:
        return counts
    wider: CountArray = counts.astype(np.min_scalar_type(n))
    return wider


def _remember(key: tuple[int, int, Seed], counts: CountArray) -> None:
    _WEIGHTS[key] = counts
    while len(_WEIGHTS) > 1 and sum(c.nbytes for c in _WEIGHTS.values()) > _WEIGHTS_CACHE_BYTES:
        _WEIGHTS.popitem(last=False)


def cluster_weights(cluster_of: IntArray, resamples: int, seed: Seed) -> Resamples:
    """Multiplicities when whole clusters are resampled: ``(R, G)`` counts of the clusters.

    ``cluster_of[i]`` is prompt i's cluster, numbered 0..G-1. G clusters are drawn with
    replacement and a prompt counts as often as its cluster was drawn, so prompts that share an
    annotation group (and its habits) move together, as they would in a new sample of groups.
    """
    counts = resample_weights(int(cluster_of.max()) + 1, resamples, seed).counts
    return Resamples(counts, cluster_of)


def percentile_intervals(samples: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray]:
    """Per-column percentile interval of ``(R, S)`` resampled statistics, NaN resamples ignored."""
    levels = [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0]
    if samples.shape[0] == 0:  # no resamples asked for: no interval
        return np.full(samples.shape[1], np.nan), np.full(samples.shape[1], np.nan)
    finite = np.isfinite(samples)
    if finite.all():
        low, high = np.quantile(samples, levels, axis=0)
        return low, high
    low, high = np.full(samples.shape[1], np.nan), np.full(samples.shape[1], np.nan)
    for s in range(samples.shape[1]):
        if finite[:, s].any():  # an all-undefined statistic keeps NaN (and raises no warning)
            low[s], high[s] = np.quantile(samples[finite[:, s], s], levels)
    return low, high
