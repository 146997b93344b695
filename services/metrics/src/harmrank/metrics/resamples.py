"""Bootstrap resamples as compact integer counts, multiplied exactly a few rows at a time.

A report's ``R`` resamples of ``n`` prompts are an ``(R, n)`` matrix of multiplicities, and
every resampled figure is that matrix times per-prompt contributions (``bootstrap.py``). Held
as float64 it was 8 bytes a cell (400 MB for 1,000 resamples of 50,000 prompts, again when
clusters were indexed out of it); here the counts stay integers (a byte a count) and become
float64 a few rows at a time inside the product, so the product's memory does not grow with
``R x n``.

Why the product is exact: BLAS does not give a block of rows the bits those rows get in one
product of the whole matrix (OpenBLAS picks kernels and splits the work between threads by
shape, which changes the order of the additions; the whole product's bits even changed with
the thread count: 130 of 6,251 numbers of a test report between 1 and 2 threads). So each
contribution column is split into slices whose values are integer multiples of one power of
two, with few enough bits that every weighted sum of a slice is an integer below 2**53 times
that power: float64 holds it exactly, whatever the order of the additions. A resample's figure
is the sum of its slices' exact sums, smallest first: the same bits for any grouping of rows,
thread count or BLAS. Integer-valued columns (counts, wins, confusion cells) are one slice,
their exact sum, as before; a float column (RBO, tau, expected contributions) usually takes
two, its exact sum rounded once or twice, within a unit in the last place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CountArray = npt.NDArray[np.unsignedinteger[Any]]

PRODUCT_CELLS = 1_000_000
"""Counts made float64 at a time in a product (8 MB; 20 rows of 50,000 prompts)."""

_SMALLEST_POWER = -1074  # every float64 is an integer multiple of 2**-1074


@dataclass(frozen=True)
class Slices:
    """A data matrix's columns split into exactly summable slices, by level: ``levels[s]`` is
    ``(columns, matrix)``, the s-th slice of those data columns (a column whose earlier slices
    left nothing has no further one); levels run from the largest values to the smallest."""

    levels: tuple[tuple[IntArray, FloatArray], ...]
    width: int

    @classmethod
    def of(cls, data: FloatArray, most_weight: int) -> Slices:
        """Slices of ``data`` whose sums weighted by non-negative integers adding up to at most
        ``most_weight`` are exact."""
        finite = np.isfinite(data).all(axis=0)
        if not finite.all():
            bad = np.flatnonzero(~finite).tolist()
            raise ValueError(f"bootstrap contributions must be finite; columns {bad} are not")
        # |sum of w_i k_i| <= most_weight * 2**bits <= 2**53: every partial sum is exact too.
        bits = 53 - math.ceil(math.log2(max(most_weight, 1)))
        if bits < 1:  # about 2**26 prompts in clusters: far beyond any request the service takes
            raise ValueError(f"resamples of total weight up to {most_weight} cannot sum exactly")
        # One column at a time: the temporaries are a column's, not the whole matrix's.
        pieces = [_column_slices(data[:, j], bits) for j in range(data.shape[1])]
        levels = []
        for level in range(max(map(len, pieces), default=0)):
            columns = np.asarray([j for j, p in enumerate(pieces) if len(p) > level], np.int64)
            levels.append((columns, np.column_stack([pieces[j][level] for j in columns])))
            for j in columns:  # stacked: the column's copy can go
                pieces[j][level] = _EMPTY
        return cls(tuple(levels), data.shape[1])

    def times(self, weights: FloatArray) -> FloatArray:
        """``weights @ data``: per data column, the sum of its slices' exact products, smallest
        slice first (a fixed order, so the result does not depend on which rows came along)."""
        out = np.zeros((weights.shape[0], self.width))
        for columns, matrix in reversed(self.levels):
            out[:, columns] += weights @ matrix
        return out


_EMPTY: FloatArray = np.zeros(0)


def _column_slices(column: FloatArray, bits: int) -> list[FloatArray]:
    """``column`` as slices of integer multiples of one power of two each, ``bits`` wide."""
    rest = np.array(column, dtype=np.float64)
    out = []
    while rest.any():
        exponent = int(np.frexp(np.abs(rest).max())[1])  # |rest| < 2**exponent
        unit = math.ldexp(1.0, max(exponent - bits, _SMALLEST_POWER))
        piece = np.rint(rest / unit) * unit  # powers of two: no rounding but the rint
        rest -= piece  # exact: the rounding error of a coarser grid
        out.append(piece)
    return out


@dataclass(frozen=True)
class Resamples:
    """``R`` resamples as multiplicities: ``counts`` ``(R, G)`` of G drawn units (read-only,
    shared through the draw cache); ``columns[i]`` is prompt i's unit (its cluster), or None
    when the units are the prompts themselves."""

    counts: CountArray
    columns: IntArray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(resamples, prompts)."""
        n = self.counts.shape[1] if self.columns is None else len(self.columns)
        return self.counts.shape[0], n

    def rows(self, start: int, stop: int) -> FloatArray:
        """Rows ``start:stop`` as float64 multiplicities of the prompts."""
        block = self.counts[start:stop]
        if self.columns is not None:
            block = block[:, self.columns]
        out: FloatArray = block.astype(np.float64)
        return out

    def most_weight(self) -> int:
        """A bound on one resample's total multiplicity: G units drawn, each standing for at
        most the largest cluster's prompts (n exactly when the units are prompts)."""
        units = self.counts.shape[1]
        if self.columns is None or self.columns.size == 0:
            return units
        return units * int(np.bincount(self.columns).max())

    def times(self, data: FloatArray) -> FloatArray:
        """``W @ data`` (``(R, n) @ (n, K)``), exact per slice, a few rows of W at a time."""
        resamples, n = self.shape
        if data.shape[0] != n:
            raise ValueError(f"{n} prompts resampled, but contributions for {data.shape[0]}")
        out = np.empty((resamples, data.shape[1]))
        if resamples == 0:  # no intervals asked for: nothing to slice
            return out
        slices = Slices.of(data, self.most_weight())
        step = max(1, PRODUCT_CELLS // max(n, 1))
        for start in range(0, resamples, step):
            stop = min(start + step, resamples)
            out[start:stop] = slices.times(self.rows(start, stop))
        return out
