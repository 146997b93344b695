"""The score task's hop to the metrics service: the run report over HTTP against in-process.

Run: ``uv run python bench/score_hop.py`` (``--prompts 1000`` for a quick check). The rankings
of a run the size of ``scale_run.py``'s (5,000 prompts, 3 models, judges gpt4o and claude, 200
resamples) are scored twice, alternately, ``--repeats`` times each: by ``build_report`` in this
process, and by ``ScoreExecutor`` sending them to ``harmrank serve metrics`` in a process of its
own (request built, sent, report computed, answered and parsed). Prints both medians and their
ratio: the platform's price for moving the statistics out of the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from harmrank.common.http import create_client
from harmrank.gateway.runs.executors import ScoreExecutor
from harmrank.gateway.runs.work import ScoreWork
from harmrank.metrics.chance import all_rankings
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings, build_report
from processes import Processes

MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")


def score_work(prompts: int) -> ScoreWork:
    rng = np.random.default_rng(0)
    valid = [tuple(int(v) for v in r) for k in range(4) for r in all_rankings(3, k)]
    judges = []
    for name in ("gpt4o", "claude"):
        rows = {f"p{i}": valid[x] for i, x in enumerate(rng.integers(0, len(valid), prompts))}
        judges.append(AnnotatorRankings.build(name, MODELS, rows))
    settings = ReportSettings(p=0.9, resamples=200)
    return ScoreWork(judges, [("gpt4o", "claude")], settings, {"prompts": prompts})


def in_process(work: ScoreWork) -> float:
    started = time.perf_counter()
    build_report(work.annotators, work.settings, pairs=work.pairs)
    return time.perf_counter() - started


async def over_http(executor: ScoreExecutor, work: ScoreWork) -> float:
    started = time.perf_counter()
    await executor.execute(work)
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    work = score_work(args.prompts)
    procs = Processes(Path(tempfile.mkdtemp(prefix="harmrank-score-hop-")))
    try:
        metrics = procs.serve("metrics", {"HARMRANK_METRICS_LOG_LEVEL": "warning"})
        assert metrics.url is not None
        async with create_client(metrics.url, timeout=httpx.Timeout(300.0)) as client:
            executor = ScoreExecutor(client)
            await over_http(executor, work)  # warm-up: imports and first-call caches
            in_process(work)
            local, remote = [], []
            for _ in range(args.repeats):
                local.append(in_process(work))
                remote.append(await over_http(executor, work))
    finally:
        procs.stop_all()
    a, b = statistics.median(local), statistics.median(remote)
    print(f"run report, {args.prompts} prompts x 2 judges, 200 resamples; {args.repeats} each")
    print(f"  in-process build_report: median {a:.3f} s")
    print(f"  POST /v1/report to the metrics service: median {b:.3f} s")
    print(f"  ratio HTTP / in-process: {b / a:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
