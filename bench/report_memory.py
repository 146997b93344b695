"""Peak memory and time of a run's report at scale, computed in-process as the metrics service does.

Run: ``uv run python bench/report_memory.py`` (default cases: 50,000 prompts at 1,000 and 200
resamples, 200,000 prompts at 200). Each case runs in a fresh process of its own, so its peak
resident memory (``ru_maxrss``) is the report's alone: the rankings of a run shaped like
``bench/scale_run.py``'s (3 models, judges gpt4o and claude, one pair) are built, then
``build_report`` computes the whole report (win-rate intervals per judge, the pair's agreement
figures with their intervals). Prints the peak before the report (imports and rankings), the
peak after, and the report's wall time. ``--case PROMPTS:RESAMPLES`` picks other sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the children import harmrank; the parent starts them
    from harmrank.metrics.rankings import AnnotatorRankings

sys.path.insert(0, str(Path(__file__).parent))

DEFAULT_CASES = ("50000:1000", "50000:200", "200000:200")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def judges(prompts: int) -> list[AnnotatorRankings]:
    import numpy as np

    from harmrank.metrics.chance import all_rankings
    from harmrank.metrics.rankings import AnnotatorRankings

    rng = np.random.default_rng(0)
    valid = [tuple(int(v) for v in r) for k in range(4) for r in all_rankings(3, k)]
    out = []
    for name in ("gpt4o", "claude"):
        rows = {f"p{i}": valid[x] for i, x in enumerate(rng.integers(0, len(valid), prompts))}
        out.append(AnnotatorRankings.build(name, ("m1", "m2", "m3"), rows))
    return out


PAIRS = [("gpt4o", "claude")]


def one_case(prompts: int, resamples: int) -> dict[str, float]:
    """Build the rankings and the report in this process; its figures as a dict."""
    from harmrank.metrics.report import ReportSettings, build_report

    annotators = judges(prompts)
    before = _peak_mb()
    started = time.perf_counter()
    build_report(annotators, ReportSettings(p=0.9, resamples=resamples), pairs=PAIRS)
    took = time.perf_counter() - started
    return {"before_mb": before, "peak_mb": _peak_mb(), "seconds": took}


def served_case(prompts: int, resamples: int) -> str:
    """The case's report request answered by a metrics service of its own (a fresh peak)."""
    from harmrank.metrics.report import ReportSettings
    from harmrank.metrics.schemas import ReportRequest
    from processes import fresh_metrics_report

    settings = ReportSettings(p=0.9, resamples=resamples)
    body = ReportRequest.of(judges(prompts), settings, PAIRS).model_dump_json(exclude_none=True)
    return fresh_metrics_report(body.encode(), "harmrank-report-memory-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--case", action="append", help="PROMPTS:RESAMPLES (repeatable)")
    parser.add_argument("--serve", action="store_true", help="send each to a metrics service")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        for case in args.case or DEFAULT_CASES:
            prompts, resamples = (int(x) for x in case.split(":"))
            said = served_case(prompts, resamples)
            print(f"{prompts:>8,} prompts x {resamples:>5,} resamples: {said}", flush=True)
        return
    if args.child:
        prompts, resamples = (int(x) for x in args.child.split(":"))
        print(json.dumps(one_case(prompts, resamples)))
        return
    for case in args.case or DEFAULT_CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--child", case],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])
        prompts, resamples = (int(x) for x in case.split(":"))
        print(
            f"{prompts:>8,} prompts x {resamples:>5,} resamples: report {got['seconds']:6.2f} s; "
            f"peak RSS {got['peak_mb']:6.0f} MB ({got['before_mb']:.0f} MB before the report)",
            flush=True,
        )


if __name__ == "__main__":
    main()
