"""Rank-Biased Overlap (RBO) for uneven, possibly tied, rankings.

References (equation numbers are the papers'):

- [W] W. Webber, A. Moffat, J. Zobel, "A similarity measure for indefinite rankings", ACM TOIS
  28(4), 2010. Uneven lists, Section 4.2: RBO_min, RBO_res (max - min) and RBO_ext (eq. 32).
- [CU] M. Corsi, J. Urbano, "The Treatment of Ties in Rank-Biased Overlap", SIGIR 2024, and its
  reference implementation (github.com/julian-urbano/sigir2024-rbo, ``rbo/Python/rbo.py``). It
  generalises [W] to tie groups with three variants: ``w`` (ties as equality, Webber's own
  suggestion), ``a`` (the expected RBO over uniformly random tie breaks, below 1 for identical
  tied lists) and ``b`` (``a`` corrected, cosine-like, for the information ties lose).

The scalar :func:`rbo` follows [CU]'s sectioned formulation (depths ``1..s``, ``s+1..l`` and the
tail beyond ``l``, with S the shorter list); on untied lists every variant reduces to [W]
exactly. :func:`rbo_ext_batch` codes [W] eq. 32 directly, so the two cross-check each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from harmrank.common.errors import InvalidInput

Variant = Literal["ext", "min", "res"]
Ties = Literal["w", "a", "b"]
Item = str | int
ListLike = Sequence[Item | Sequence[Item]]

EMPTY_CONVENTION = "both lists empty -> 1.0 (identical); exactly one empty -> 0.0"

_VARIANTS: tuple[Variant, ...] = ("ext", "min", "res")
_TIES: tuple[Ties, ...] = ("w", "a", "b")
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class RBOResult:
    """One RBO evaluation: the requested value plus all three scores (min <= ext <= min + res).

    ``depth`` is the longer list's length in items; ``empty`` says the empty-list convention
    (:data:`EMPTY_CONVENTION`) decided the value.
    """

    rbo: float
    p: float
    variant: Variant
    ties: Ties
    min: float
    res: float
    ext: float
    depth: int
    empty: bool


# ---------------------------------------------------------------------------------- validation


def check_p(p: float) -> float:
    # The `rbo` package defaults p to 1.0 in RankingSimilarity.rbo (plain average overlap), which
    # silently changes the measure; p is therefore required here and must lie strictly inside.
    if isinstance(p, bool) or not isinstance(p, Real) or not 0.0 < p < 1.0:
        raise InvalidInput(f"RBO persistence p must be a number with 0 < p < 1, got {p!r}")
    return float(p)


def _item(value: object, which: str) -> Item:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"list {which}: items must be str or int, got {value!r}")
    return value


def _group(element: object, which: str) -> list[Item]:
    """One element of a ranking as its tie group (a lone item is a group of one)."""
    if isinstance(element, list | tuple | set | frozenset):
        if not element:
            raise InvalidInput(f"list {which}: empty tie group")
        return [_item(v, which) for v in element]
    return [_item(element, which)]


# ---------------------------------------------------------------------------------- flattening


@dataclass(frozen=True)
class _Flat:
    """A ranking flattened to items, each with the 1-based ranks its tie group spans."""

    items: tuple[Item, ...]
    top: NDArray[np.int64]
    bottom: NDArray[np.int64]


def _flatten(ranking: ListLike, which: str) -> _Flat:
    items: list[Item] = []
    top: list[int] = []
    bottom: list[int] = []
    for element in ranking:
        group = _group(element, which)
        first = len(items) + 1
        items.extend(group)
        top.extend([first] * len(group))
        bottom.extend([first + len(group) - 1] * len(group))
    if len(set(items)) != len(items):
        dupes = sorted({repr(i) for i in items if items.count(i) > 1})
        raise InvalidInput(f"list {which}: items appear more than once: {', '.join(dupes)}")
    return _Flat(tuple(items), np.array(top, dtype=np.int64), np.array(bottom, dtype=np.int64))


def _contributions(flat: _Flat, ties: Ties, depth: int) -> FloatArray:
    """[CU] item contributions: row i, column d-1 is how much item i is in the top d.

    ``w``: a whole tie group enters at its top rank. ``a``/``b``: an item of a group spanning
    ranks t..b is in the top d with probability (d-t+1)/(b-t+1) under a random tie break.
    """
    d = np.arange(1, depth + 1, dtype=np.float64)[None, :]
    top = flat.top[:, None].astype(np.float64)
    if ties == "w":
        return (d >= top).astype(np.float64)
    span = flat.bottom[:, None] - flat.top[:, None] + 1
    return np.clip((d - top + 1.0) / span, 0.0, 1.0)


# ---------------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class _Profile:
    """Per-depth quantities over depths 1..l, S being the shorter list (in items)."""

    s: int
    l: int  # noqa: E741  (the papers' name for the longer length)
    x_seen: FloatArray  # overlap of what both lists show at depth d
    x_max_extra: FloatArray  # most extra overlap S's unseen items could add (0 up to s)
    l_unique_mean: FloatArray  # mean positive contribution of L-only items (nan up to s)
    mass_s: FloatArray  # size of S's prefix; d itself past s (S continues, unseen)
    mass_l: FloatArray
    sq_s: FloatArray  # sum of squared contributions (variant b's norms)
    sq_l: FloatArray


def _profile(short: _Flat, long: _Flat, ties: Ties) -> _Profile:
    s, l = len(short.items), len(long.items)  # noqa: E741
    c_s, c_l = _contributions(short, ties, l), _contributions(long, ties, l)
    in_s = {item: i for i, item in enumerate(short.items)}
    shared = [(in_s[item], j) for j, item in enumerate(long.items) if item in in_s]
    rows_s = np.array([i for i, _ in shared], dtype=np.int64)
    rows_l = np.array([j for _, j in shared], dtype=np.int64)
    x_seen = (c_s[rows_s] * c_l[rows_l]).sum(axis=0)
    only_l = c_l[[j for j, item in enumerate(long.items) if item not in in_s]]
    depth = np.arange(1, l + 1, dtype=np.float64)
    past_s = depth > s
    return _Profile(
        s=s,
        l=l,
        x_seen=x_seen,
        x_max_extra=_max_extra(only_l, s),
        l_unique_mean=_positive_mean(only_l, past_s),
        mass_s=np.where(past_s, depth, c_s.sum(axis=0)),
        mass_l=c_l.sum(axis=0),
        sq_s=np.where(past_s, depth, (c_s**2).sum(axis=0)),
        sq_l=(c_l**2).sum(axis=0),
    )


def _max_extra(only_l: FloatArray, s: int) -> FloatArray:
    """[CU] max overlap added at depth d > s: S's d-s unseen items match L's first d-s L-only items.

    Contributions within a tie group are equal, so taking them in list order is exact.
    """
    n, l = only_l.shape[0], only_l.shape[1]  # noqa: E741
    extra = np.zeros(l)
    for d in range(s + 1, l + 1):
        extra[d - 1] = only_l[: min(d - s, n), d - 1].sum()
    return extra


def _positive_mean(only_l: FloatArray, past_s: NDArray[np.bool_]) -> FloatArray:
    """[CU] mean of the L-only items' non-zero contributions at each depth (nan where unused)."""
    positive = only_l > 0
    count = positive.sum(axis=0)
    total = np.where(positive, only_l, 0.0).sum(axis=0)
    usable = past_s & (count > 0)
    return np.where(usable, total / np.where(usable, count, 1), np.nan)


def _agreement(x: FloatArray, prof: _Profile, ties: Ties) -> FloatArray:
    """[CU] agreement A_d = overlap over the size of the prefixes, in each variant's normalisation.

    On untied lists all three are Webber's A_d = X_d / d.
    """
    depth = np.arange(1, prof.l + 1, dtype=np.float64)
    if ties == "w":
        return 2.0 * x / (prof.mass_s + prof.mass_l)
    if ties == "a":
        return x / depth
    norm: FloatArray = np.sqrt(prof.sq_s) * np.sqrt(prof.sq_l)
    return x / norm


def _weights(p: float, depth: int) -> FloatArray:
    """RBO's depth weights (1-p) p^(d-1), d = 1..depth ([W] eq. 7 with (1-p)/p folded in)."""
    return np.asarray((1.0 - p) * p ** np.arange(depth, dtype=np.float64), dtype=np.float64)


def _tail_min(x_l: float, l: int, p: float) -> float:  # noqa: E741
    """[W] RBO_min's tail: overlap frozen at X_l for d > l, (1-p)/p * X_l * sum_{d>l} p^d/d."""
    head = sum(p**d / d for d in range(1, l + 1))
    tail = -math.log1p(-p) - head
    # For a tiny p the tail underflows to 0 (or cancels to a hair below it) while (1-p)/p
    # overflows: the limit is 0, where the product would be inf * 0 = nan.
    if tail <= 0.0 or x_l == 0.0:
        return 0.0
    return (1.0 - p) / p * x_l * tail


def _tail_max(x_l: float, s: int, l: int, p: float) -> float:  # noqa: E741
    """[W] RBO_max's tail: every unseen item matches, so A_d = (2d-l-s+X_l)/d until it reaches 1
    at f = l + s - X_l, and 1 after (weight p^f)."""
    f = l + s - round(x_l)
    d = np.arange(l + 1, f + 1, dtype=np.float64)
    partial = float(np.sum((1.0 - p) * p ** (d - 1) * (2 * d - l - s + x_l) / d))
    return partial + p**f


def _tail_ext(x_l: float, a_s: float, s: int, l: int, p: float) -> float:  # noqa: E741
    """[W] eq. 32's last term: agreement past l held at (X_l + (l-s) A_s) / l, weight p^l."""
    return (x_l + (l - s) * a_s) / l * p**l


def _scores(prof: _Profile, ties: Ties, p: float) -> tuple[float, float, float]:
    """(min, max, ext) from the [CU] sections; with no ties this is [W] Section 4.2 / eq. 32."""
    s, l = prof.s, prof.l  # noqa: E741
    weights = _weights(p, l)
    depth = np.arange(1, l + 1, dtype=np.float64)
    a_min = _agreement(prof.x_seen, prof, ties)
    a_max = _agreement(prof.x_seen + prof.x_max_extra, prof, ties)
    a_s = float(a_min[s - 1])
    unseen = np.where(depth > s, (depth - s) * a_s * prof.l_unique_mean, 0.0)
    a_ext = _agreement(prof.x_seen + unseen, prof, ties)
    x_l = float(prof.x_seen[-1])
    rbo_min = float(weights @ a_min) + _tail_min(x_l, l, p)
    rbo_max = float(weights @ a_max) + _tail_max(x_l, s, l, p)
    rbo_ext = float(weights @ a_ext) + _tail_ext(x_l, a_s, s, l, p)
    return rbo_min, rbo_max, rbo_ext


# ---------------------------------------------------------------------------------- public API


def rbo(
    s: ListLike, t: ListLike, *, p: float, variant: Variant = "ext", ties: Ties = "w"
) -> RBOResult:
    """RBO of two rankings (uneven lengths allowed; a list/tuple element is a tie group).

    Untied lists give [W]'s RBO_min, RBO_res = RBO_max - RBO_min and RBO_ext (eq. 32) for every
    ``ties`` value; tied lists give [CU]'s RBO^w, RBO^a or RBO^b. Empty lists follow
    :data:`EMPTY_CONVENTION` (res is then 0).
    """
    p = check_p(p)
    if variant not in _VARIANTS:
        raise InvalidInput(f"RBO variant must be one of {_VARIANTS}, got {variant!r}")
    if ties not in _TIES:
        raise InvalidInput(f"RBO ties must be one of {_TIES}, got {ties!r}")
    fs, ft = _flatten(s, "s"), _flatten(t, "t")
    short, long = (fs, ft) if len(fs.items) <= len(ft.items) else (ft, fs)
    depth = len(long.items)
    if not short.items:
        value = 1.0 if not long.items else 0.0
        picked = 0.0 if variant == "res" else value
        return RBOResult(picked, p, variant, ties, value, 0.0, value, depth, True)
    rbo_min, rbo_max, rbo_ext = _scores(_profile(short, long, ties), ties, p)
    chosen = {"min": rbo_min, "res": rbo_max - rbo_min, "ext": rbo_ext}
    return RBOResult(
        chosen[variant], p, variant, ties, rbo_min, rbo_max - rbo_min, rbo_ext, depth, False
    )


def rbo_ext_batch(s: NDArray[np.int64], t: NDArray[np.int64], p: float) -> NDArray[np.float64]:
    """[W] eq. 32 RBO_ext for many untied list pairs at once, one pair per row.

    Items are non-negative ints; -1 pads the tail of a shorter row (a row of -1 is an empty
    list, which follows :data:`EMPTY_CONVENTION`). The two arrays may differ in width.
    """
    p = check_p(p)
    s_arr, t_arr = _batch_input(s, "s"), _batch_input(t, "t")
    if s_arr.shape[0] != t_arr.shape[0]:
        raise InvalidInput(f"s has {s_arr.shape[0]} rows but t has {t_arr.shape[0]}")
    overlap = _batch_overlap(s_arr, t_arr)
    len_s, len_t = (s_arr >= 0).sum(axis=1), (t_arr >= 0).sum(axis=1)
    return _eq32(overlap, np.minimum(len_s, len_t), np.maximum(len_s, len_t), p)


def _batch_input(a: NDArray[np.int64], which: str) -> NDArray[np.int64]:
    arr = np.asarray(a)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInput(f"{which} must be a 2-D integer array, got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.int64, copy=False)
    if np.any(arr < -1):
        raise InvalidInput(f"{which}: items must be >= 0 (-1 pads)")
    # A pad followed by an item anywhere implies one right after a pad somewhere.
    if np.any((arr[:, :-1] < 0) & (arr[:, 1:] >= 0)):
        raise InvalidInput(f"{which}: -1 padding must only fill the tail of a row")
    ordered = np.sort(arr, axis=1)
    if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)):
        raise InvalidInput(f"{which}: an item appears twice in one row")
    return arr


# Above this many (i, j, depth) cells the "entered by depth" matrix gets too big (lists of
# ~100+ items), and the overlap is counted per matched item instead.
_DENSE_CELLS = 1 << 20
# Rows per chunk: keeps the (rows, |S|, |T|) comparison cache-sized (measured best near 4k rows
# of 10 x 10) and memory bounded for long lists.
_CHUNK_CELLS = 1 << 19


def _batch_overlap(s: NDArray[np.int64], t: NDArray[np.int64]) -> FloatArray:
    """X_d for d = 1..width: item S[i] = T[j] is shared from depth max(i, j) + 1 on."""
    n, ms, mt = s.shape[0], s.shape[1], t.shape[1]
    width = max(ms, mt, 1)
    overlap = np.zeros((n, width))
    if ms == 0 or mt == 0:
        return overlap
    t = np.where(t < 0, -2, t)  # pads of s (-1) and t (-2) never match each other
    dense = ms * mt * width <= _DENSE_CELLS
    count = _entered_dense(ms, mt, width) if dense else None
    step = max(1, _CHUNK_CELLS // (ms * mt))
    for lo in range(0, n, step):
        equal = s[lo : lo + step, :, None] == t[lo : lo + step, None, :]
        overlap[lo : lo + step] = _overlap_rows(equal, count, width)
    return overlap


def _entered_dense(ms: int, mt: int, width: int) -> NDArray[np.float32]:
    """Row (i, j), column d-1: 1 when a match S[i] = T[j] counts in X_d, i.e. max(i, j) < d."""
    i, j = np.meshgrid(np.arange(ms), np.arange(mt), indexing="ij")
    entered = np.maximum(i, j).reshape(-1, 1) < np.arange(1, width + 1)[None, :]
    return entered.astype(np.float32)


def _overlap_rows(
    equal: NDArray[np.bool_], count: NDArray[np.float32] | None, width: int
) -> FloatArray:
    rows, ms = equal.shape[0], equal.shape[1]
    if count is not None:
        # One small GEMM; float32 is exact here (0/1 terms, sums <= width).
        flat = equal.reshape(rows, -1).astype(np.float32)
        return np.asarray(flat @ count, dtype=np.float64)
    j = equal.argmax(axis=2)
    matched = np.take_along_axis(equal, j[:, :, None], axis=2)[:, :, 0]
    enters = np.where(matched, np.maximum(np.arange(ms)[None, :], j), width)
    keys = (np.arange(rows)[:, None] * (width + 1) + enters).ravel()
    counts = np.bincount(keys, minlength=rows * (width + 1)).reshape(rows, width + 1)
    overlap: FloatArray = np.cumsum(counts[:, :width], axis=1).astype(np.float64)
    return overlap


def _eq32(x: FloatArray, s: NDArray[np.int64], l: NDArray[np.int64], p: float) -> FloatArray:  # noqa: E741
    """[W] eq. 32 per row: (1-p)/p [sum_{d<=l} X_d/d p^d + sum_{s<d<=l} X_s (d-s)/(s d) p^d]
    + ((X_l - X_s)/l + X_s/s) p^l, with empty rows by :data:`EMPTY_CONVENTION`.

    Sums over d are prefix sums H(k) = sum_{d<=k} w_d/d of the weights w_d = (1-p) p^(d-1), so
    no row is masked: X_d = X_l past l, and sum_{s<d<=l} w_d = p^s - p^l.
    """
    width = x.shape[1]
    w_over_d = _weights(p, width) / np.arange(1, width + 1)
    h = np.concatenate(([0.0], np.cumsum(w_over_d)))
    pw = p ** np.arange(width + 1, dtype=np.float64)
    rows = np.arange(x.shape[0])
    x_s = x[rows, np.maximum(s - 1, 0)]
    x_l = x[rows, np.maximum(l - 1, 0)]
    a_s = x_s / np.maximum(s, 1)
    seen = x @ w_over_d - x_l * (h[width] - h[l])
    beyond_s = a_s * (pw[s] - pw[l]) - x_s * (h[l] - h[s])
    tail = ((x_l - x_s) / np.maximum(l, 1) + a_s) * pw[l]
    value = seen + beyond_s + tail
    return np.where(s == 0, np.where(l == 0, 1.0, 0.0), value)
