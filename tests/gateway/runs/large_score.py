"""A run's score work of any size, shaped like a real run's, without running one: 3 models, 2
judges (``gpt4o`` in two presentation orders, ``claude`` in one, as ``bench/scale_run.py``), and
the orders shown. Used by the tests of the report request's size and by
``bench/report_request.py``."""

from __future__ import annotations

import itertools

import numpy as np

from harmrank.gateway.runs.work import ScoreWork
from harmrank.metrics.chance import all_rankings
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings
from harmrank.metrics.schemas import PresentedIn, ReportRequest, RunFactsIn

MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
JUDGES = (("gpt4o", 2), ("claude", 1))  # (judge, presentation orders)


def score_work(prompts: int, *, id_length: int = 0, resamples: int = 200) -> ScoreWork:
    """``prompts`` ranked by both judges; prompt ids ``p0``, ``p1``, … padded with "-" to
    ``id_length`` characters (datasets' own ids can be long)."""
    rng = np.random.default_rng(0)
    valid = [tuple(int(v) for v in r) for k in range(4) for r in all_rankings(3, k)]
    orders = list(itertools.permutations(range(3)))
    ids = [f"p{i}".ljust(id_length, "-") for i in range(prompts)]
    judges, presented = [], []
    for name, times in JUDGES:
        picks = [valid[x] for x in rng.integers(0, len(valid), prompts)]
        judges.append(AnnotatorRankings.build(name, MODELS, dict(zip(ids, picks, strict=True))))
        shown = rng.integers(0, len(orders), prompts * times)
        # Built unvalidated, as the score task builds them (score_facts._presented).
        presented.append(
            PresentedIn.model_construct(
                annotator=name,
                n_prompts=prompts,
                ranks=[r for i in range(prompts * times) for r in picks[i % prompts]],
                positions=[p for s in shown for p in orders[s]],
            )
        )
    run = RunFactsIn(expected={name: prompts for name, _ in JUDGES}, presented=presented)
    settings = ReportSettings(p=0.9, resamples=resamples)
    return ScoreWork(judges, [("gpt4o", "claude")], settings, {"prompts": prompts}, None, run)


def request_body(work: ScoreWork) -> bytes:
    """The report request the score task sends for ``work``, as it sends it."""
    request = ReportRequest.of(work.annotators, work.settings, work.pairs, work.ppi, work.run)
    return request.model_dump_json(exclude_none=True).encode()
