"""The reproduction's cost on the study's data, phase by phase.

Run: ``uv run python bench/reproduce.py [--data PATH]`` (default ``../shared/paper-data``).
Prints the median of 3 in-process runs of each phase (import the CSVs; store them in a fresh
SQLite database and read them back; compute every statistic with 1,000 resamples; figures and
reports; the "how many human labels?" simulation, part of the statistics, also on its
own: 5 n x 500 repetitions x 4 predictors x 9 estimands x 3 methods), and one cold
``harmrank reproduce`` in a new process (interpreter and imports included). Targets: import
plus statistics under 10 s; the cold command under 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harmrank.gateway.db.engine import sqlite_url
from harmrank.gateway.reports.summary import build_summary
from harmrank.gateway.study import decisions, import_study
from harmrank.metrics.jury import jury
from harmrank.metrics.label_budget import label_budget
from harmrank.metrics.report import ReportSettings, build_report
from harmrank.reproduce.pipeline import (
    ANNOTATORS,
    PAIRS,
    REFERENCE,
    STUDY_CLUSTERS,
    data_section,
    human_groups,
    ppi_spec,
    store_and_reload,
    write_outputs,
)

DEFAULT_DATA = Path(
    os.environ.get(
        "HARMRANK_PAPER_DATA",
        Path(__file__).resolve().parents[2] / "shared/paper-data/llm-harm-psunlpgroup",
    )
)
SETTINGS = ReportSettings(p=0.9, resamples=1000, seed=0, cluster_key=STUDY_CLUSTERS)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def one_run(data: Path, work: Path) -> dict[str, float]:
    t_import, study = timed(lambda: import_study(data))
    url = sqlite_url(work / "bench.db")
    t_store, (_, rankings) = timed(
        lambda: asyncio.run(store_and_reload(study, url, label="bench", digest="0" * 64))
    )
    annotators = [rankings[n] for n in ANNOTATORS]
    clusters = human_groups(rankings)
    stored = {a.annotator: a for a in annotators}
    spec = ppi_spec(SETTINGS)
    t_stats, report = timed(
        lambda: build_report(
            annotators,
            SETTINGS,
            pairs=PAIRS,
            ppi=spec,
            clusters=clusters,
            reference_name=REFERENCE,
            decisions=decisions.variants(study, stored),
            concordance=decisions.direction_evidence(study, stored),
            fixed_order=decisions.JUDGES,
        )
    )
    predictors = [rankings[j] for j in decisions.JUDGES]
    predictors.append(jury(predictors).rankings)
    t_budget, _ = timed(lambda: label_budget(rankings["human"], predictors, spec.budget))
    data_info = data_section(study, "bench", "0" * 64, url)
    summary = build_summary(report, n_prompts=len(study.prompts), data=data_info)
    t_write, _ = timed(lambda: write_outputs(report, summary, work / "out"))
    return {
        "import": t_import,
        "store+reload": t_store,
        "statistics": t_stats,
        "  of which label budget": t_budget,
        "write": t_write,
    }


def cold_command(data: Path) -> float:
    harmrank = Path(sys.executable).parent / "harmrank"
    with tempfile.TemporaryDirectory() as tmp:
        args = [str(harmrank), "reproduce", "--data", str(data), "--out", tmp]
        seconds, _ = timed(lambda: subprocess.run(args, check=True, capture_output=True))
    return float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    data = parser.parse_args().data
    runs = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_run(data, Path(tmp)))
    medians = {phase: statistics.median(r[phase] for r in runs) for phase in runs[0]}
    print(f"Reproduction of the study on {data.name} (median of 3 runs, 1,000 resamples)")
    for phase, seconds in medians.items():
        print(f"  {phase:<24}: {seconds:6.2f} s")
    core = medians["import"] + medians["store+reload"] + medians["statistics"]
    print(f"  import + statistics: {core:.2f} s (target < 10 s: {core / 10:.0%} of it)")
    cold = cold_command(data)
    print(f"  cold `harmrank reproduce` in a new process: {cold:.2f} s (target < 60 s)")


if __name__ == "__main__":
    main()
