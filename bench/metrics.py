"""Metrics benchmarks: the full report's cost and RBO_ext throughput.

Run: ``make bench`` or ``uv run python bench/metrics.py``. Prints:

1. The full report (per-annotator figures and agreement with intervals and chance baselines) for
   4 annotators (6 pairs) x 1,000 prompts x 3 models with 1,000 bootstrap resamples: median of
   5 cold runs (caches cleared). Target: under 1 s on a 2-core machine. The baseline in the same
   process is the textbook bootstrap (re-run the statistics on each explicitly resampled data
   set), timed on 20 resamples and scaled to 1,000.
2. RBO_ext on 100,000 untied list pairs against a per-pair loop over the ``rbo`` package
   (``rbo_throughput.py``). Target: at least 20x.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import rbo_throughput
from harmrank.metrics import bootstrap as bootstrap_module
from harmrank.metrics import contributions as contributions_module
from harmrank.metrics.chance import all_rankings
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings, build_report

MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
N_PROMPTS = 1000
RESAMPLES = 1000
BASELINE_RESAMPLES = 20


def annotators(seed: int = 0) -> list[AnnotatorRankings]:
    rng = np.random.default_rng(seed)
    valid = [tuple(int(v) for v in r) for k in range(4) for r in all_rankings(3, k)]
    out = []
    for j in range(4):
        picks = rng.integers(0, len(valid), N_PROMPTS)
        rows = {f"p{i}": valid[x] for i, x in enumerate(picks)}
        out.append(AnnotatorRankings.build(f"annotator{j}", MODELS, rows))
    return out


def clear_caches() -> None:
    contributions_module._rbo_pair.cache_clear()
    bootstrap_module.clear_weights_cache()


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        clear_caches()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def explicit_bootstrap(anns: list[AnnotatorRankings], resamples: int) -> None:
    """The baseline: resample prompts, rebuild the annotators, recompute every pair's figures."""
    rng = np.random.default_rng(1)
    for _ in range(resamples):
        idx = rng.integers(0, N_PROMPTS, N_PROMPTS)
        resampled = [
            AnnotatorRankings.build(
                a.annotator, MODELS, {f"r{i}": tuple(a.ranks[x]) for i, x in enumerate(idx)}
            )
            for a in anns
        ]
        build_report(resampled, ReportSettings(p=0.9, resamples=0, seed=0))


def main() -> None:
    anns = annotators()
    settings = ReportSettings(p=0.9, resamples=RESAMPLES, seed=1)
    report_s = median_seconds(lambda: build_report(anns, settings), repeats=5)
    base_s = median_seconds(lambda: explicit_bootstrap(anns, BASELINE_RESAMPLES), repeats=3)
    base_s *= RESAMPLES / BASELINE_RESAMPLES
    print(
        f"Full report: 4 annotators (6 pairs) x {N_PROMPTS} prompts x 3 models, "
        f"{RESAMPLES} resamples"
    )
    print(f"  harmrank build_report       : {report_s:.3f} s (median of 5 cold runs; target < 1 s)")
    print(
        f"  explicit-resampling baseline: {base_s:.1f} s "
        f"(timed on {BASELINE_RESAMPLES} resamples, scaled)"
    )
    print(f"  speed-up                    : {base_s / report_s:.0f}x")
    print()
    rbo_throughput.main()


if __name__ == "__main__":
    main()
