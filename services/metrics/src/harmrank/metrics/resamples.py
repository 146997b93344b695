"""Bootstrap resamples as compact integer counts, multiplied exactly in chunks of rows.

A report's ``R`` resamples of ``n`` prompts are an ``(R, n)`` matrix of multiplicities, and
every resampled figure is that matrix times per-prompt contributions (``bootstrap.py``). Held
as float64 it was 8 bytes a cell (400 MB for 1,000 resamples of 50,000 prompts, twice over when
clusters were indexed out of it); here the counts stay integers (one byte a count) and become
float64 a few rows at a time, inside the product, so the product's memory does not grow with
``R x n``.

Exactness, and why rows can be grouped freely: a BLAS product of a block of rows does not
always give the bits the same rows give in one product of the whole matrix (OpenBLAS picks
kernels and splits work between threads by the shape, so the sums are added in another
order). The product here is instead exact per slice: each contribution column is split into
slices whose values are integer multiples of one power of two, few enough bits that every
weighted sum of a slice is an integer below 2**53 times that power, which float64 holds exactly
whatever the order of the additions. A resample's figure is then the sum of its slices' exact
sums, added smallest first: the same bits for any grouping of rows, any thread count, any BLAS.
Integer-valued columns (counts, wins, confusion cells) are one slice: exactly their sum, as
before. Float columns (RBO, tau, expected contributions) get their exact sum rounded at most
once per slice (two or three): within a unit or so in the last place of the exact sum, where
one BLAS sum over 50,000 prompts could be many units off and depended on the thread count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CountArray = npt.NDArray[np.unsignedinteger]

PRODUCT_CELLS = 1_000_000
"""Counts made float64 at a time in a product (8 MB; 20 rows of 50,000 prompts)."""

_SMALLEST_POWER = -1074  # every float64 is an integer multiple of 2**-1074


@dataclass(frozen=True)
class Slices:
    """A data matrix's columns split into exactly summable slices.

    ``matrix`` holds the slices side by side, ``blocks[s]`` the data columns of slice ``s``
    (columns whose earlier slices left nothing have no further slice); slices run from the
    largest values to the smallest."""

    matrix: FloatArray
    blocks: tuple[IntArray, ...]
    width: int

    @classmethod
    def of(cls, data: FloatArray, most_weight: int) -> Slices:
        """Slices of ``data`` whose sums weighted by non-negative integers adding up to at most
        ``most_weight`` are exact."""
        if not np.isfinite(data).all():
            bad = np.flatnonzero(~np.isfinite(data).all(axis=0)).tolist()
            raise ValueError(f"bootstrap contributions must be finite; columns {bad} are not")
        # |sum of w_i k_i| <= most_weight * 2**bits <= 2**53: every partial sum is exact too.
        bits = 53 - math.ceil(math.log2(max(most_weight, 1)))
        rest = np.array(data, dtype=np.float64)
        columns = np.flatnonzero((rest != 0).any(axis=0)) if rest.size else np.arange(0)
        pieces, blocks = [], []
        while columns.size:
            part = rest[:, columns]
            exponent = np.frexp(np.abs(part).max(axis=0))[1]  # |part| < 2**exponent
            unit = np.ldexp(1.0, np.maximum(exponent - bits, _SMALLEST_POWER))
            piece = np.rint(part / unit) * unit  # powers of two: no rounding but the rint
            pieces.append(piece)
            blocks.append(columns)
            rest[:, columns] = part - piece  # exact: the rounding error of a coarser grid
            columns = columns[(rest[:, columns] != 0).any(axis=0)]
        matrix = np.hstack(pieces) if pieces else np.zeros((data.shape[0], 0))
        return cls(matrix, tuple(blocks), data.shape[1])

    def combine(self, products: FloatArray) -> FloatArray:
        """Per data column, the sum of its slices' products (``rows x slices``), smallest
        slice first: a fixed order, so the result does not depend on which rows came along."""
        out = np.zeros((products.shape[0], self.width))
        ends = np.cumsum([len(b) for b in self.blocks])
        for block, end in zip(reversed(self.blocks), reversed(ends), strict=True):
            out[:, block] += products[:, end - len(block) : end]
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
        slices = Slices.of(data, self.most_weight())
        out = np.empty((resamples, data.shape[1]))
        step = max(1, PRODUCT_CELLS // max(n, 1))
        for start in range(0, resamples, step):
            stop = min(start + step, resamples)
            out[start:stop] = slices.combine(self.rows(start, stop) @ slices.matrix)
        return out
