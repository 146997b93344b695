"""Rank-Biased Overlap: hand-worked cases, the `rbo` package, Corsi & Urbano's reference values,
and properties.

[W] = Webber, Moffat, Zobel, TOIS 2010; [CU] = Corsi, Urbano, SIGIR 2024 (ties).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import statistics
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from rbo import RankingSimilarity

from harmrank.common.errors import InvalidInput
from harmrank.metrics.rbo import (
    EMPTY_CONVENTION,
    Item,
    RBOResult,
    Ties,
    rbo,
    rbo_ext_batch,
)

TOL = 1e-12
TIES: tuple[Ties, ...] = ("w", "a", "b")
Ranking = list[Item | list[Item]]


def _max(r: RBOResult) -> float:
    return r.min + r.res


def _geometric_tail(p: float, upto: int) -> float:
    """sum_{d > upto} p^d / d = ln(1/(1-p)) - sum_{d <= upto} p^d / d."""
    return -math.log(1 - p) - sum(p**d / d for d in range(1, upto + 1))


# ------------------------------------------------------------------ hand-worked cases from [W]


def test_three_items_fully_reversed() -> None:
    # S = a b c, T = c b a, p = 0.9. Overlaps X_1 = 0, X_2 = 1 ({b}), X_3 = 3.
    # [W] eq. 32 with s = l = 3: (1-p)/p * sum_d X_d/d p^d + X_3/3 p^3
    #   = (0.1/0.9) * (0 + 0.5 * 0.81 + 1 * 0.729) + 0.729 = 0.126 + 0.729 = 0.855.
    # RBO_min adds the frozen overlap X_3 = 3 for d > 3: 0.126 + (0.1/0.9) * 3 * tail(0.9, 3).
    # Every item is seen by depth 3, so the best case is agreement 1 from there: max = 0.855.
    r = rbo(["a", "b", "c"], ["c", "b", "a"], p=0.9)
    assert r.ext == pytest.approx(0.855, abs=TOL)
    assert r.min == pytest.approx(0.126 + 0.1 / 0.9 * 3 * _geometric_tail(0.9, 3), abs=TOL)
    assert r.min == pytest.approx(0.377528, abs=1e-6)
    assert _max(r) == pytest.approx(0.855, abs=TOL)
    assert (r.depth, r.empty, r.variant, r.ties, r.rbo) == (3, False, "ext", "w", r.ext)


def test_uneven_lists_by_hand() -> None:
    # S = a b (s = 2), L = b c a (l = 3), p = 0.5. X_1 = 0, X_2 = 1, X_3 = 2, X_s = 1.
    # [W] eq. 32: (1-p)/p [X_2/2 p^2 + X_3/3 p^3 + X_s (3-2)/(2*3) p^3]
    #             + ((X_3 - X_s)/3 + X_s/2) p^3 = 11/48 + 5/48 = 1/3.
    # min: 0.25 * 1/2 + 0.125 * 2/3 + X_3 * tail(0.5, 3) = 5/24 + 2 * tail.
    # max: S's unseen 3rd item could be c, so A_3 = 1 and every item matches from f = 3 on:
    #      0.25 * 1/2 + 0.125 * 1 + p^3 = 0.375.
    r = rbo(["a", "b"], ["b", "c", "a"], p=0.5)
    assert r.ext == pytest.approx(1 / 3, abs=TOL)
    assert r.min == pytest.approx(5 / 24 + 2 * _geometric_tail(0.5, 3), abs=TOL)
    assert _max(r) == pytest.approx(0.375, abs=TOL)
    assert r.depth == 3


def test_disjoint_lists() -> None:
    # a b vs c d, p = 0.5: nothing seen in common, so min = ext = 0. At best S's 3rd item is c or
    # d and L's 3rd is a or b (A_3 = 2/3), and all four match by depth f = 4 (A_4 = 1):
    # max = 0.5 * 0.25 * 2/3 + 0.5 * 0.125 * 1 + 0.5^4 = 5/24.
    r = rbo(["a", "b"], ["c", "d"], p=0.5, variant="res")
    assert (r.min, r.ext) == (0.0, 0.0)
    assert r.rbo == r.res == pytest.approx(5 / 24, abs=TOL)


@pytest.mark.parametrize("ties", TIES)
def test_identical_untied_lists(ties: Ties) -> None:
    r = rbo([3, 1, 2, 7], [3, 1, 2, 7], p=0.8, ties=ties)
    assert r.ext == pytest.approx(1.0, abs=TOL)
    assert _max(r) == pytest.approx(1.0, abs=TOL)
    assert r.min < 1.0  # the unseen tail could still disagree


@pytest.mark.parametrize("variant", ["ext", "min", "res"])
@pytest.mark.parametrize("ties", TIES)
def test_empty_convention(variant: str, ties: Ties) -> None:
    assert "both lists empty -> 1.0" in EMPTY_CONVENTION
    both = rbo([], [], p=0.9, variant=variant, ties=ties)  # type: ignore[arg-type]
    assert (both.min, both.ext, both.res, both.empty, both.depth) == (1.0, 1.0, 0.0, True, 0)
    assert both.rbo == (0.0 if variant == "res" else 1.0)
    one = rbo([], ["a", ["b", "c"]], p=0.9, variant=variant, ties=ties)  # type: ignore[arg-type]
    assert (one.rbo, one.min, one.ext, one.res, one.empty, one.depth) == (0, 0, 0, 0, True, 3)


def test_webber_uneven_residual_closed_form() -> None:
    # [W] Section 4.2: RBO_res = p^s + p^l - p^f - (1-p)/p (s sum_{d=s+1}^f p^d/d
    #   + l sum_{d=l+1}^f p^d/d + X_l [ln(1/(1-p)) - sum_{d=1}^f p^d/d]), f = l + s - X_l.
    # We compute res as max - min from per-depth agreements; this checks the two agree.
    short, long = list("abcd"), list("cxaeyzq")
    r = rbo(short, long, p=0.7)
    assert r.res == pytest.approx(_webber_res(x_l=2, s=4, l=7, p=0.7), abs=TOL)


def _webber_res(x_l: int, s: int, l: int, p: float) -> float:  # noqa: E741
    f = l + s - x_l
    part_s = s * sum(p**d / d for d in range(s + 1, f + 1))
    part_l = l * sum(p**d / d for d in range(l + 1, f + 1))
    return p**s + p**l - p**f - (1 - p) / p * (part_s + part_l + x_l * _geometric_tail(p, f))


# ------------------------------------------------------------------ the `rbo` package


def _package_ext(s: Sequence[Item], t: Sequence[Item], p: float) -> float:
    # The package prints (never warns) when it clamps a value into [0, 1]; swallow that.
    with contextlib.redirect_stdout(io.StringIO()):
        return float(RankingSimilarity(list(s), list(t)).rbo_ext(p=p))


@pytest.mark.parametrize(
    ("s", "t", "p"),
    [
        (list("abcde"), list("bacde"), 0.9),  # equal length
        (list("abcdefg"), list("gfedcba"), 0.98),
        (list("abcdef"), list("bxc"), 0.9),  # uneven, short list partly shared
        (list("abcdefg"), list("gfe"), 0.9),  # shared items only deep in the long list
        (["x"], list("abx"), 0.5),
        ([1, 2, 3], [4, 5], 0.3),
    ],
)
def test_matches_rbo_package_ext(s: list[Item], t: list[Item], p: float) -> None:
    # RankingSimilarity.rbo_ext implements [W] eq. 32 for uneven lists (checked by reading its
    # source and by these values), so it is compared directly, both argument orders.
    assert rbo(s, t, p=p).ext == pytest.approx(_package_ext(s, t, p), abs=TOL)
    assert rbo(t, s, p=p).ext == pytest.approx(_package_ext(t, s, p), abs=TOL)


def test_rbo_package_deviations_are_not_compared() -> None:
    # RankingSimilarity.rbo(ext=True) is not eq. 32: it cuts both lists at the SHORTER depth
    # and extrapolates from there, ignoring the long list's tail, so it differs on uneven lists.
    # RankingSimilarity.rbo() also defaults to p = 1.0 (plain average overlap, not RBO), and
    # without ext it is the bare prefix sum, not [W]'s RBO_min (which adds the X_k tail term).
    s, t = list("abcdefg"), list("gfe")
    assert RankingSimilarity(s, t).rbo(p=0.9, ext=True) == 0.0
    assert rbo(s, t, p=0.9).ext == pytest.approx(0.2605654285714286, abs=TOL)
    assert RankingSimilarity(s, t).rbo(p=0.9) < rbo(s, t, p=0.9).min


# ------------------------------------------------------------------ tie variants ([CU])


def test_tie_group_against_untied_by_hand() -> None:
    # S = (a b) tied, T = a b, p = 0.5, weights (1-p) p^(d-1) = 0.5, 0.25, tail p^2 = 0.25.
    # w: the group enters whole at depth 1: A_1 = 2 X_1 / (|S_1| + |T_1|) = 2 * 1 / (2 + 1),
    #    A_2 = 1, so ext = 0.5 * 2/3 + 0.25 * 1 + 0.25 = 5/6.
    # a: a and b are each in S's top 1 with probability 1/2: X_1 = 1/2, A_1 = 1/2, A_2 = 1,
    #    ext = 0.75, the mean of RBO(ab, ab) = 1 and RBO(ba, ab) = 0.5 * 0 + 0.25 + 0.25 = 0.5.
    # b: A_1 = X_1 / sqrt(sum c_S^2) / sqrt(sum c_T^2) = (1/2) / sqrt(1/2) / 1 = sqrt(1/2).
    s: Ranking = [["a", "b"]]
    assert rbo(s, ["a", "b"], p=0.5, ties="w").ext == pytest.approx(5 / 6, abs=TOL)
    assert rbo(s, ["a", "b"], p=0.5, ties="a").ext == pytest.approx(0.75, abs=TOL)
    b_ext = 0.5 * math.sqrt(0.5) + 0.25 + 0.25
    assert rbo(s, ["a", "b"], p=0.5, ties="b").ext == pytest.approx(b_ext, abs=TOL)
    untied = [rbo(x, ["a", "b"], p=0.5).ext for x in (["a", "b"], ["b", "a"])]
    assert statistics.fmean(untied) == pytest.approx(0.75, abs=TOL)


def test_identical_tied_lists_by_hand() -> None:
    # (a b) c vs (a b) c, p = 0.5, weights 0.5, 0.25, 0.125 and tail p^3 = 0.125.
    # a: X_1 = 1/2 * 1/2 + 1/2 * 1/2, so A_1 = 1/2, A_2 = A_3 = 1 and ext = 0.75 < 1: by design
    # the expected RBO of independent random tie breaks (same order 1, opposite 0.5).
    s: Ranking = [["a", "b"], "c"]
    a_ext = 0.5 * 0.5 + 0.25 + 0.125 + 0.125
    assert rbo(s, s, p=0.5, ties="a").ext == pytest.approx(a_ext, abs=TOL)
    assert rbo(["b", "a", "c"], ["a", "b", "c"], p=0.5).ext == pytest.approx(0.5, abs=TOL)
    assert rbo(s, s, p=0.5, ties="w").ext == pytest.approx(1.0, abs=TOL)
    assert rbo(s, s, p=0.5, ties="b").ext == pytest.approx(1.0, abs=TOL)


def test_corsi_urbano_readme_example() -> None:
    # julian-urbano/sigir2024-rbo, rbo/Python/README.md (values printed to 7 digits).
    x: Ranking = ["red", ["blue", "green"], "yellow", "pink"]
    y: Ranking = [["blue", "red"], "white", ["yellow", "black", "purple"], "green"]
    expected = {
        "a": (0.6922853, 0.3310519, 0.8930692),
        "w": (0.7068257, 0.3429684, 0.9049857),
        "b": (0.7207131, 0.3509163, 0.9129336),
    }
    for ties, (ext, low, high) in expected.items():
        r = rbo(x, y, p=0.95, ties=ties)  # type: ignore[arg-type]
        assert (r.ext, r.min, _max(r)) == pytest.approx((ext, low, high), abs=6e-8)
        assert r.res == pytest.approx(0.5620173, abs=6e-8)


# Rows of julian-urbano/sigir2024-rbo rbo/test.csv (commit 463d6d5, the reference
# implementation's own test data): x, y, p, then (ext, min, max, res) for w, a and b.
CU_ROWS = [
    "(i3 i6) (i2 i7) i10|(i3 i6 i7 i10) (i1 i2)|0.965413635276732|0.946064537517568,"
    "0.343706790399566,0.958770957517067,0.615064167117501,0.92051534467649,0.319428239558438,"
    "0.934492406675939,0.615064167117501,0.956844651806714,0.348953051936765,0.964017219054266,"
    "0.615064167117501",
    "i13 (i1 i4 i5 i6)|i3 i14 i11 (i10 i15) i12 (i6 i9) i4 i2|0.92238320668128|"
    "0.117578490431637,0.0763135264223449,0.53999366118093,0.463680134758586,0.114619469221414,"
    "0.0733545052121218,0.537945108035391,0.464590602823269,0.11474835409049,0.0734833900811979,"
    "0.538589532380772,0.465106142299574",
    "(i4 i7 i15) (i2 i11) i8 i18|i4 i8 i17 i11 (i2 i3 i5 i7 i9 i13 i14)|0.955836875418683|"
    "0.601671359995661,0.310498723372055,0.820912519608734,0.510413796236679,0.584235464666522,"
    "0.295503371358027,0.805839323150565,0.510335951792538,0.632087129618464,0.322093781902212,"
    "0.833840285843908,0.511746503941696",
    "i21 i20 (i1 i16 i19) (i5 i10) i4|(i12 i17) (i2 i3 i8 i11) (i15 i18) (i6 i13) (i7 i14) i9|"
    "0.930074017489188|0,0,0.389142712252727,0.389142712252727,0,0,0.38977330351866,"
    "0.38977330351866,0,0,0.390116806797613,0.390116806797613",
    "i2 i5 i3 (i1 i4)|i5 i8 i2 (i3 i9)|0.968922741966306|0.580287544332462,0.196704918554571,"
    "0.917454802645556,0.720749884090985,0.580994268838527,0.197411643060636,0.918161527151621,"
    "0.720749884090985,0.583518284931614,0.199935659153723,0.920685543244708,0.720749884090985",
    "(i1 i6 i12 i13 i14 i16 i17 i18 i20) (i4 i22)|i6 (i1 i3 i4 i5 i7 i8 i9 i11 i12 i13)|"
    "0.932756867472415|0.415703796861517,0.316098298221172,0.636645707245265,0.320547409024093,"
    "0.348159849561566,0.248554350921222,0.569101759945315,0.320547409024093,0.43960869072398,"
    "0.340003192083635,0.660550601107728,0.320547409024093",
    "(i2 i4 i5) (i9 i11)|i7 (i1 i2 i3 i4 i5)|0.945785260564493|0.562374879224653,"
    "0.267964008723162,0.852742380492738,0.584778371769576,0.510040933443038,0.223885712864094,"
    "0.80866408463367,0.584778371769576,0.534789526096388,0.2431196196332,0.827897991402776,"
    "0.584778371769576",
]


def _parse(text: str) -> Ranking:
    """[CU]'s string form: items separated by blanks, tie groups in parentheses."""
    out: Ranking = []
    group: list[str] | None = None
    for token in text.split():
        if token.startswith("("):
            group = [token[1:]]
        elif group is not None:
            group.append(token.rstrip(")"))
        else:
            out.append(token)
        if group is not None and token.endswith(")"):
            group[-1] = group[-1].rstrip(")")
            out.append(list[Item](group))
            group = None
    return out


@pytest.mark.parametrize("row", CU_ROWS)
def test_corsi_urbano_reference_values(row: str) -> None:
    x, y, p, values = row.split("|")
    numbers = [float(v) for v in values.split(",")]
    for k, ties in enumerate(TIES):
        r = rbo(_parse(x), _parse(y), p=float(p), ties=ties)
        got = (r.ext, r.min, _max(r), r.res)
        assert got == pytest.approx(numbers[4 * k : 4 * k + 4], abs=1e-9)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_p_must_be_strictly_between_0_and_1(p: float) -> None:
    with pytest.raises(InvalidInput, match="0 < p < 1"):
        rbo(["a"], ["a"], p=p)
    with pytest.raises(InvalidInput, match="0 < p < 1"):
        rbo_ext_batch(np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1), dtype=np.int64), p)


def test_p_has_no_default() -> None:
    with pytest.raises(TypeError):
        rbo(["a"], ["a"])  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("s", "message"),
    [
        (["a", "b", "a"], "more than once"),
        (["a", ["b", "a"]], "more than once"),
        ([["a", "b"], "c", ["c"]], "more than once"),
        (["a", []], "empty tie group"),
        (["a", 1.5], "str or int"),
        (["a", ["b", ["c"]]], "str or int"),
    ],
)
def test_invalid_lists(s: Ranking, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        rbo(s, ["a"], p=0.9)


def test_invalid_variant_and_ties() -> None:
    with pytest.raises(InvalidInput, match="variant"):
        rbo(["a"], ["a"], p=0.9, variant="max")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="ties"):
        rbo(["a"], ["a"], p=0.9, ties="x")  # type: ignore[arg-type]


def _arr(rows: list[list[int]]) -> NDArray[np.int64]:
    return np.array(rows, dtype=np.int64)


@pytest.mark.parametrize(
    ("s", "message"),
    [
        (_arr([[1, 2, 1]]), "twice"),
        (_arr([[1, -1, 2]]), "tail"),
        (_arr([[1, -3, -1]]), ">= 0"),
        (np.array([[0.5, 1.0]]), "integer"),
        (np.array([1, 2]), "2-D"),
    ],
)
def test_batch_invalid_input(s: NDArray[np.int64], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        rbo_ext_batch(s, _arr([[1, 2]]), 0.9)


def test_batch_row_count_mismatch() -> None:
    with pytest.raises(InvalidInput, match="rows"):
        rbo_ext_batch(_arr([[1], [2]]), _arr([[1]]), 0.9)


# ------------------------------------------------------------------ batch


def _padded(lists: Sequence[Sequence[int]], width: int) -> NDArray[np.int64]:
    out = np.full((len(lists), width), -1, dtype=np.int64)
    for row, items in enumerate(lists):
        out[row, : len(items)] = items
    return out


def test_batch_examples_and_empty_rows() -> None:
    s = _padded([[0, 1, 2], [], [], [5, 6], [9]], 3)
    t = _padded([[2, 1, 0, 7, 8], [], [4], [6], [8, 9]], 5)  # different widths are fine
    expected = [rbo(a, b, p=0.9).ext for a, b in [([0, 1, 2], [2, 1, 0, 7, 8]), ([], [])]]
    expected += [0.0, rbo([5, 6], [6], p=0.9).ext, rbo([9], [8, 9], p=0.9).ext]
    assert rbo_ext_batch(s, t, 0.9) == pytest.approx(expected, abs=TOL)
    assert rbo_ext_batch(s[:0], t[:0], 0.9).shape == (0,)
    assert rbo_ext_batch(np.zeros((2, 0), np.int64), _padded([[1], []], 1), 0.9).tolist() == [
        0.0,
        1.0,
    ]


def test_batch_long_lists_use_the_sparse_path() -> None:
    # 120 x 120 x 120 cells exceed the dense "entered by depth" matrix; counts go per item.
    rng = np.random.default_rng(7)
    lists = [rng.permutation(300)[: rng.integers(0, 121)].tolist() for _ in range(6)]
    s, t = _padded(lists[:3], 120), _padded(lists[3:], 120)
    expected = [rbo(a, b, p=0.98).ext for a, b in zip(lists[:3], lists[3:], strict=True)]
    assert rbo_ext_batch(s, t, 0.98) == pytest.approx(expected, abs=TOL)


# ------------------------------------------------------------------ properties

items = st.integers(min_value=0, max_value=14)
untied = st.lists(items, unique=True, max_size=10)
persistence = st.floats(min_value=0.01, max_value=0.99)


@st.composite
def tied(draw: st.DrawFn, max_size: int = 10) -> Ranking:
    """A ranking of distinct items, cut into tie groups at random (groups of one are items)."""
    members = draw(st.lists(items, unique=True, max_size=max_size))
    starts = draw(st.lists(st.booleans(), min_size=len(members), max_size=len(members)))
    groups: list[list[Item]] = []
    for item, start in zip(members, starts, strict=True):
        if start or not groups:
            groups.append([item])
        else:
            groups[-1].append(item)
    return [g[0] if len(g) == 1 else g for g in groups]


def _all_variants(s: Ranking, t: Ranking, p: float) -> Iterator[RBOResult]:
    for ties in TIES:
        yield rbo(s, t, p=p, ties=ties)


@given(tied(), tied(), persistence)
def test_bounds_and_ordering(s: Ranking, t: Ranking, p: float) -> None:
    for r in _all_variants(s, t, p):
        assert -TOL <= r.min <= r.ext + TOL
        assert r.ext <= r.min + r.res + TOL
        assert r.min + r.res <= 1 + TOL
        assert r.res >= -TOL


@given(tied(), tied(), persistence)
def test_symmetry(s: Ranking, t: Ranking, p: float) -> None:
    for ties in TIES:
        st_, ts = rbo(s, t, p=p, ties=ties), rbo(t, s, p=p, ties=ties)
        assert (st_.min, st_.res, st_.ext) == pytest.approx((ts.min, ts.res, ts.ext), abs=TOL)


@given(tied(), persistence)
def test_self_similarity(s: Ranking, p: float) -> None:
    if not s:
        return
    assert rbo(s, s, p=p, ties="w").ext == pytest.approx(1.0, abs=TOL)
    assert rbo(s, s, p=p, ties="b").ext == pytest.approx(1.0, abs=TOL)
    assert rbo(s, s, p=p, ties="a").ext <= 1.0 + TOL


@given(untied, persistence)
def test_self_similarity_untied(s: list[int], p: float) -> None:
    for r in _all_variants(list(s), list(s), p):
        assert r.ext == pytest.approx(1.0, abs=TOL)


@given(tied(), tied(), persistence)
def test_variant_a_at_most_b(s: Ranking, t: Ranking, p: float) -> None:
    a, b = rbo(s, t, p=p, ties="a"), rbo(s, t, p=p, ties="b")
    assert a.ext <= b.ext + TOL
    assert a.min <= b.min + TOL


@given(untied, untied, persistence)
def test_untied_variants_coincide(s: list[int], t: list[int], p: float) -> None:
    w, a, b = _all_variants(list(s), list(t), p)
    for other in (a, b):
        assert (other.min, other.res, other.ext) == pytest.approx((w.min, w.res, w.ext), abs=TOL)


@given(untied, untied, persistence)
def test_untied_matches_rbo_package(s: list[int], t: list[int], p: float) -> None:
    assert rbo(s, t, p=p).ext == pytest.approx(_package_ext(s, t, p), abs=TOL)


@given(untied, untied, persistence)
def test_untied_residual_matches_webber_closed_form(s: list[int], t: list[int], p: float) -> None:
    if not s or not t:
        return
    short, long = sorted((s, t), key=len)
    x_l = len(set(s) & set(t))
    assert rbo(s, t, p=p).res == pytest.approx(_webber_res(x_l, len(short), len(long), p), abs=TOL)


def _size(r: Ranking) -> int:
    return sum(len(g) if isinstance(g, list) else 1 for g in r)


def _tie_breaks(r: Ranking) -> Iterator[list[Item]]:
    options = [itertools.permutations(g) if isinstance(g, list) else [(g,)] for g in r]
    for combo in itertools.product(*options):
        yield [item for part in combo for item in part]


@settings(max_examples=40, deadline=None)
@given(tied(max_size=5), tied(max_size=5), persistence)
def test_variant_a_is_the_expectation_over_tie_breaks(s: Ranking, t: Ranking, p: float) -> None:
    # [CU]: RBO^a is the expected RBO when both rankings' ties are broken uniformly at random.
    # Exactly so for min; for ext only on equal lengths, as past s [CU] scales the extrapolated
    # overlap by the L-only items' mean contribution (not linear in the tie break).
    runs = [rbo(x, y, p=p) for x in _tie_breaks(s) for y in _tie_breaks(t)]
    a = rbo(s, t, p=p, ties="a")
    assert a.min == pytest.approx(statistics.fmean(r.min for r in runs), abs=TOL)
    if _size(s) == _size(t):
        assert a.ext == pytest.approx(statistics.fmean(r.ext for r in runs), abs=TOL)


@given(st.lists(st.tuples(untied, untied), max_size=12), persistence)
def test_batch_equals_scalar(pairs: list[tuple[list[int], list[int]]], p: float) -> None:
    s = _padded([a for a, _ in pairs], 10)
    t = _padded([b for _, b in pairs], 10)
    expected = [rbo(a, b, p=p).ext for a, b in pairs]
    assert rbo_ext_batch(s, t, p).tolist() == pytest.approx(expected, abs=TOL)
