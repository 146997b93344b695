"""Ordinal Krippendorff alpha from coincidence matrices, against the krippendorff package."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harmrank.metrics.alpha import (
    alpha_from_coincidence,
    coincidence_contributions,
    ordinal_alpha,
    ordinal_delta,
)

IntArray = npt.NDArray[np.int64]


def package_alpha(a: IntArray, b: IntArray) -> float:
    """The reference: units are (prompt, model) cells, the two annotators the coders."""
    data = np.stack([a.ravel(), b.ravel()]).astype(np.float64)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal"))


def rank_arrays(max_prompts: int = 30) -> st.SearchStrategy[tuple[IntArray, IntArray]]:
    shape = st.tuples(st.integers(1, max_prompts), st.integers(1, 4))
    return shape.flatmap(
        lambda s: st.tuples(
            hnp.arrays(np.int64, s, elements=st.integers(0, s[1])),
            hnp.arrays(np.int64, s, elements=st.integers(0, s[1])),
        )
    )


def test_hand_case_matches_the_2011_formulas() -> None:
    # Units (a, b): (0, 0), (1, 2), (2, 2). Coincidences: o00 = 2, o12 = o21 = 1, o22 = 2.
    # Marginals n0 = 2, n1 = 1, n2 = 3, n.. = 6. Ordinal deltas (sum_{g=c}^{k} n_g - (n_c+n_k)/2)^2:
    #   d01 = (3 - 1.5)^2 = 2.25, d12 = (4 - 2)^2 = 4, d02 = (6 - 2.5)^2 = 12.25.
    # D_o = o12 d12 + o21 d21 = 8; D_e = 2 (n0 n1 d01 + n0 n2 d02 + n1 n2 d12) = 2 (4.5 + 73.5 + 12)
    # = 180; alpha = 1 - (n.. - 1) D_o / D_e = 1 - 5 * 8 / 180 = 7 / 9.
    a = np.array([[0, 1, 2]], dtype=np.int64)
    b = np.array([[0, 2, 2]], dtype=np.int64)
    assert ordinal_alpha(a, b) == pytest.approx(7 / 9)
    assert package_alpha(a, b) == pytest.approx(7 / 9)


def test_coincidence_matrix_of_the_hand_case() -> None:
    a = np.array([[0, 1, 2]], dtype=np.int64)
    b = np.array([[0, 2, 2]], dtype=np.int64)
    o = coincidence_contributions(a, b).reshape(4, 4)
    expected = np.zeros((4, 4))
    expected[0, 0], expected[1, 2], expected[2, 1], expected[2, 2] = 2, 1, 1, 2
    np.testing.assert_array_equal(o, expected)


def test_ordinal_delta_is_symmetric_with_zero_diagonal() -> None:
    delta = ordinal_delta(np.array([2.0, 1.0, 3.0]))
    np.testing.assert_allclose(delta, delta.T)
    np.testing.assert_array_equal(np.diag(delta), 0.0)
    assert delta[0, 2] == pytest.approx(12.25)


def test_perfect_agreement_is_one() -> None:
    a = np.array([[0, 1, 2], [3, 2, 1], [0, 0, 1]], dtype=np.int64)
    assert ordinal_alpha(a, a.copy()) == pytest.approx(1.0)


def test_no_variation_is_undefined() -> None:
    a = np.zeros((4, 3), dtype=np.int64)
    assert math.isnan(ordinal_alpha(a, a.copy()))


def test_vectorised_over_resample_rows() -> None:
    rng = np.random.default_rng(3)
    flat = rng.integers(0, 5, size=(7, 16)).astype(np.float64)
    flat = flat + flat.reshape(7, 4, 4).transpose(0, 2, 1).reshape(7, 16)  # symmetric, like o
    one_by_one = [alpha_from_coincidence(row[None, :])[0] for row in flat]
    np.testing.assert_allclose(alpha_from_coincidence(flat), one_by_one)


@settings(max_examples=150, deadline=None)
@given(rank_arrays())
def test_matches_the_krippendorff_package(pair: tuple[IntArray, IntArray]) -> None:
    a, b = pair
    assume(
        len(np.unique(np.concatenate([a.ravel(), b.ravel()]))) > 1
    )  # the package needs variation
    assert ordinal_alpha(a, b) == pytest.approx(package_alpha(a, b), rel=1e-9, abs=1e-12)


def test_random_rank_data_matches_the_package() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        a, b = rng.integers(0, 4, size=(200, 3)), rng.integers(0, 4, size=(200, 3))
        assert ordinal_alpha(a, b) == pytest.approx(package_alpha(a, b), rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(rank_arrays())
def test_symmetric_in_the_coders(pair: tuple[IntArray, IntArray]) -> None:
    a, b = pair
    left, right = ordinal_alpha(a, b), ordinal_alpha(b, a)
    assert (math.isnan(left) and math.isnan(right)) or left == pytest.approx(right)
