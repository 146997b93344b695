"""Resamples kept as integer counts and multiplied exactly, a few rows at a time."""

from __future__ import annotations

from collections import OrderedDict
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmrank.metrics import bootstrap, resamples
from harmrank.metrics.bootstrap import BootstrapSpec, cluster_weights, resample_weights
from harmrank.metrics.resamples import Resamples, Slices

FloatArray = npt.NDArray[np.float64]


def old_weights(
    n: int, r: int, seed: bootstrap.Seed, cluster_of: npt.NDArray[np.int64] | None
) -> FloatArray:
    """The weights as the code before compact counts made them: one float64 (R, n) matrix."""
    units = n if cluster_of is None else int(cluster_of.max()) + 1
    dense = np.random.default_rng(seed).multinomial(units, [1.0 / units] * units, size=r)
    out: FloatArray = dense.astype(np.float64)
    return out if cluster_of is None else out[:, cluster_of]


def every_chunking(
    weights: Resamples, data: FloatArray, monkeypatch: pytest.MonkeyPatch
) -> list[FloatArray]:
    """``weights.times(data)`` with 1 row, 3 rows and all rows of W at a time."""
    out = []
    for cells in (1, 3 * weights.shape[1], 10**9):
        monkeypatch.setattr(resamples, "PRODUCT_CELLS", cells)
        out.append(weights.times(data))
    return out


CASES = [  # (prompts, resamples, clusters or None, stratum or None)
    (2, 7, None, None),
    (50, 40, None, "fraud"),
    (333, 101, None, None),
    (1000, 64, 37, None),
    (4099, 200, None, "hate"),
    (4099, 33, 500, "hate"),
]


@pytest.mark.parametrize(("n", "r", "groups", "stratum"), CASES)
def test_integer_contributions_give_the_old_full_matrix_product_exactly(
    n: int, r: int, groups: int | None, stratum: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts, wins and confusion cells are integer-valued: every sum is exact, so the chunked
    product is bit for bit the old float64 matrix's product, under every chunking."""
    monkeypatch.setattr(bootstrap, "_WEIGHTS", OrderedDict())
    rng = np.random.default_rng(n)
    cluster_of = None if groups is None else rng.integers(0, groups, n)
    if cluster_of is not None:
        cluster_of = np.unique(cluster_of, return_inverse=True)[1].astype(np.int64)
    seed = BootstrapSpec(r, 11, stratum=stratum).weight_seed
    weights = (
        resample_weights(n, r, seed) if cluster_of is None else cluster_weights(cluster_of, r, seed)
    )
    data = rng.integers(0, 17, (n, 32)).astype(np.float64)
    old = old_weights(n, r, seed, cluster_of)
    np.testing.assert_array_equal(weights.rows(0, r), old)  # the same draws
    for got in every_chunking(weights, data, monkeypatch):
        np.testing.assert_array_equal(got, old @ data)


@pytest.mark.parametrize(("n", "r", "groups", "stratum"), CASES)
def test_float_contributions_are_the_exact_sums_under_every_chunking(
    n: int, r: int, groups: int | None, stratum: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RBO-like values: the same bits whatever the grouping of rows (a BLAS product of a block
    of rows is not always the bits of the whole product), within one unit in the last place of
    the exact rational sum, and within float rounding of the old product."""
    monkeypatch.setattr(bootstrap, "_WEIGHTS", OrderedDict())
    rng = np.random.default_rng(n + 1)
    cluster_of = None if groups is None else np.arange(n) % groups
    seed = BootstrapSpec(r, 5, stratum=stratum).weight_seed
    weights = (
        resample_weights(n, r, seed) if cluster_of is None else cluster_weights(cluster_of, r, seed)
    )
    data = np.column_stack(
        [rng.random(n), rng.normal(size=n) * 1e-9, 0.9 ** rng.integers(0, 40, n)]
    )
    first, *others = every_chunking(weights, data, monkeypatch)
    for other in others:
        np.testing.assert_array_equal(other, first)
    old = old_weights(n, r, seed, cluster_of)
    np.testing.assert_allclose(first, old @ data, rtol=1e-12, atol=0)  # the old rounding
    for row in range(0, r, max(1, r // 5)):  # exact rational sums of a few resamples
        w = old[row].astype(np.int64)
        for j in range(data.shape[1]):
            exact = float(
                sum(Fraction(int(k)) * Fraction(v) for k, v in zip(w, data[:, j], strict=True))
            )
            assert abs(first[row, j] - exact) <= np.spacing(abs(exact)), (row, j)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    r=st.integers(0, 12),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1.0, 1e-300, 1e300, 3.0e-320]),
)
def test_any_finite_data_sums_the_same_under_every_chunking(
    n: int, r: int, seed: int, scale: float
) -> None:
    """Mixed signs, zeros, tiny (subnormal) and huge values: slicing terminates and a row's
    sums do not depend on the rows computed with it."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, 3)) * scale * (rng.random((n, 3)) < 0.8)
    counts = rng.multinomial(n, [1.0 / n] * n, size=r).astype(np.uint8)
    weights = Resamples(counts)
    whole = weights.times(data)
    slices = Slices.of(data, weights.most_weight())
    by_row = [slices.times(weights.rows(i, i + 1)) for i in range(r)]
    np.testing.assert_array_equal(np.vstack([whole[:0], *by_row]), whole)
    assert whole.shape == (r, 3)


def test_slices_add_up_to_the_data() -> None:
    rng = np.random.default_rng(0)
    data = np.column_stack([rng.random(500), rng.integers(0, 9, 500), np.zeros(500)])
    slices = Slices.of(data, 500)
    assert slices.levels[0][0].tolist() == [0, 1]  # the zero column needs no slice
    assert all(columns.tolist() == [0] for columns, _ in slices.levels[1:])  # integers: one
    total = np.zeros_like(data)
    for columns, matrix in slices.levels:
        total[:, columns] += matrix
    np.testing.assert_array_equal(total, data)


def test_non_finite_contributions_are_refused_by_column() -> None:
    data = np.array([[1.0, np.nan], [2.0, 0.0]])
    with pytest.raises(ValueError, match=r"columns \[1\] are not"):
        Resamples(np.ones((3, 2), dtype=np.uint8)).times(data)


def test_weights_too_large_to_sum_exactly_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot sum exactly"):
        Slices.of(np.ones((2, 1)), 2**53)


def test_contributions_of_another_prompt_count_are_refused() -> None:
    with pytest.raises(ValueError, match="3 prompts resampled, but contributions for 2"):
        Resamples(np.ones((4, 3), dtype=np.uint8)).times(np.ones((2, 1)))


def test_a_count_over_a_byte_widens_the_stored_counts() -> None:
    counts = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert bootstrap._widened(counts, 255, 70_000) is counts
    wider = bootstrap._widened(counts, 256, 70_000)
    assert wider.dtype == np.uint32  # counts never exceed n = 70,000
    np.testing.assert_array_equal(wider, counts)


def test_cluster_weights_share_the_compact_draw_of_the_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap, "_WEIGHTS", OrderedDict())
    cluster_of = np.array([0, 0, 1, 2, 2, 2])
    w = cluster_weights(cluster_of, 50, 1)
    assert w.counts is resample_weights(3, 50, 1).counts  # (R, G), never an (R, n) copy
    assert w.shape == (50, 6)
    assert w.most_weight() == 3 * 3  # 3 clusters drawn, the largest of 3 prompts
    assert sum(c.nbytes for c in bootstrap._WEIGHTS.values()) == 50 * 3
