"""Throughput of ``rbo_ext_batch`` against a per-pair loop over the ``rbo`` package.

Run: ``uv run python bench/rbo_throughput.py`` (or import ``run`` from ``bench/metrics.py``).
Both sides get the same seeded, untied, uneven pairs (lengths 0..10 from 20 items). The ``rbo``
package's ``rbo_ext`` implements Webber et al.'s eq. 32 like ours, empty lists included, so the
values are compared on every pair that package is timed on.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from rbo import RankingSimilarity

from harmrank.metrics.rbo import rbo_ext_batch

P = 0.9
ALPHABET = 20
MAX_LEN = 10
# The pure-Python package takes ~15 µs a pair; timing all 100k pairs five times would dominate
# the bench, so it is timed on a subsample and scaled linearly (its cost is per pair).
PKG_SAMPLE = 20_000

Pairs = tuple[NDArray[np.int64], NDArray[np.int64]]


def make_pairs(n_pairs: int, seed: int = 20250211) -> Pairs:
    """Seeded random untied lists, one pair per row, -1 padding the tail of shorter lists."""
    rng = np.random.default_rng(seed)

    def side() -> NDArray[np.int64]:
        items = rng.random((n_pairs, ALPHABET)).argsort(axis=1)[:, :MAX_LEN].astype(np.int64)
        lengths = rng.integers(0, MAX_LEN + 1, size=n_pairs)
        items[np.arange(MAX_LEN)[None, :] >= lengths[:, None]] = -1
        return items

    return side(), side()


def as_lists(rows: NDArray[np.int64]) -> list[list[int]]:
    return [[int(v) for v in row if v >= 0] for row in rows]


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _package_loop(s: list[list[int]], t: list[list[int]]) -> list[float]:
    return [float(RankingSimilarity(a, b).rbo_ext(p=P)) for a, b in zip(s, t, strict=True)]


def run(n_pairs: int = 100_000, repeats: int = 5) -> dict[str, float]:
    """Median seconds of each side on ``n_pairs`` pairs, their ratio, and the largest gap."""
    s, t = make_pairs(n_pairs)
    harmrank_s = _median_seconds(lambda: rbo_ext_batch(s, t, P), repeats)
    sample = min(n_pairs, PKG_SAMPLE)
    s_lists, t_lists = as_lists(s[:sample]), as_lists(t[:sample])
    pkg_sample_s = _median_seconds(lambda: _package_loop(s_lists, t_lists), repeats)
    rbo_pkg_s = pkg_sample_s * n_pairs / max(sample, 1)
    ours = rbo_ext_batch(s[:sample], t[:sample], P)
    theirs = np.array(_package_loop(s_lists, t_lists))
    return {
        "pairs": float(n_pairs),
        "harmrank_s": harmrank_s,
        "rbo_pkg_s": rbo_pkg_s,
        "ratio": rbo_pkg_s / harmrank_s,
        "rbo_pkg_timed_pairs": float(sample),
        "max_abs_diff": float(np.max(np.abs(ours - theirs), initial=0.0)),
    }


def main() -> None:
    r = run()
    print(f"RBO_ext throughput on {int(r['pairs']):,} untied pairs (lengths 0..10, p={P})")
    print(f"  harmrank rbo_ext_batch     : {r['harmrank_s']:.4f} s (median)")
    print(
        f"  rbo package per-pair loop  : {r['rbo_pkg_s']:.4f} s (median, timed on "
        f"{int(r['rbo_pkg_timed_pairs']):,} pairs and scaled)"
    )
    print(f"  speed-up                   : {r['ratio']:.1f}x")
    print(f"  max |difference| of values : {r['max_abs_diff']:.2e}")


if __name__ == "__main__":
    main()
