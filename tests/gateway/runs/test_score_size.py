"""A run's score task against the metrics service over real HTTP, at the sizes of large runs.

The score task sends a whole run's rankings in one report request; a run of ~80,000 prompts
made it larger than the 10 MiB every service accepted. The metrics service now takes what its
job needs by default, and a request still too large fails the task saying what was too large
and which setting to raise, whether the metrics service or a proxy in front of it refused it.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from tests.conftest import ServeApp

from harmrank.common.http import RetryPolicy, create_client
from harmrank.gateway.runs.executors import ScoreExecutor
from harmrank.gateway.runs.failures import upstream_of
from harmrank.gateway.runs.tasks import TaskFailed
from harmrank.gateway.runs.work import ScoreWork
from harmrank.metrics.app import create_app as create_metrics
from harmrank.metrics.chance import all_rankings
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings
from harmrank.metrics.schemas import PresentedIn, ReportRequest, RunFactsIn
from harmrank.metrics.settings import MetricsSettings

MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
JUDGES = (("gpt4o", 2), ("claude", 1))  # (judge, presentation orders), as bench/scale_run.py's
TEN_MIB = 10 * 1024 * 1024


def score_work(prompts: int, id_length: int = 8) -> ScoreWork:
    """A run's score work shaped like a real one: 3 models, 2 judges, the orders shown; prompt
    ids padded to ``id_length`` characters (datasets' own ids are often long)."""
    rng = np.random.default_rng(0)
    valid = [tuple(int(v) for v in r) for k in range(4) for r in all_rankings(3, k)]
    orders = list(itertools.permutations(range(3)))
    ids = [f"p{i}".ljust(id_length, "-") for i in range(prompts)]
    judges, presented = [], []
    for name, times in JUDGES:
        picks = rng.integers(0, len(valid), prompts)
        judges.append(
            AnnotatorRankings.build(
                name, MODELS, dict(zip(ids, (valid[x] for x in picks), strict=True))
            )
        )
        shown = rng.integers(0, len(orders), prompts * times)
        presented.append(
            PresentedIn(
                annotator=name,
                n_prompts=prompts,
                ranks=[r for i in range(prompts * times) for r in valid[picks[i % prompts]]],
                positions=[p for s in shown for p in orders[s]],
            )
        )
    run = RunFactsIn(expected={name: prompts for name, _ in JUDGES}, presented=presented)
    settings = ReportSettings(p=0.9, resamples=10)
    return ScoreWork(judges, [("gpt4o", "claude")], settings, {"prompts": prompts}, None, run)


def request_bytes(work: ScoreWork) -> int:
    request = ReportRequest.of(work.annotators, work.settings, work.pairs, work.ppi, work.run)
    return len(request.model_dump_json(exclude_none=True).encode())


@pytest.fixture
async def executor_for(serve_app: ServeApp) -> AsyncIterator[Callable[[FastAPI], ScoreExecutor]]:
    clients: list[httpx.AsyncClient] = []

    def make(app: FastAPI) -> ScoreExecutor:
        client = create_client(serve_app(app), timeout=120.0, policy=RetryPolicy(max_attempts=1))
        clients.append(client)
        return ScoreExecutor(client)

    yield make
    for client in clients:
        await client.aclose()


async def test_a_report_request_over_10_mib_is_scored_at_the_default_limit(
    executor_for: Callable[[FastAPI], ScoreExecutor],
) -> None:
    # Long prompt ids make the request pass 10 MiB with few prompts, so the report is quick.
    work = score_work(11_000, id_length=480)
    assert request_bytes(work) > TEN_MIB
    report: dict[str, Any] = await executor_for(create_metrics()).execute(work)
    assert report["run"] == {"prompts": 11_000}
    assert report["models"] == list(MODELS)
    assert report["settings"]["resamples"] == 10


async def test_a_report_request_over_the_limit_fails_the_task_saying_what_to_raise(
    executor_for: Callable[[FastAPI], ScoreExecutor],
) -> None:
    work = score_work(1_000)
    size = request_bytes(work)
    executor = executor_for(create_metrics(MetricsSettings(max_body_bytes=50_000)))
    with pytest.raises(TaskFailed) as raised:
        await executor.execute(work)
    failure = raised.value.failure
    assert (failure.error_type, failure.transient) == ("payload_too_large", False)
    message = failure.message
    assert message.startswith("metrics answered 413: ")
    assert upstream_of(message) == "metrics"  # how run status names who refused it
    # The service's own words: the size, its limit and the setting of that limit.
    assert f"the request body of {size:,} bytes is larger than this service accepts" in message
    assert "its limit is 50,000 bytes (set by HARMRANK_METRICS_MAX_BODY_BYTES)" in message
    # The worker's: what it sent, for how large a run, and what to do.
    assert f"(the request sent was {size:,} bytes)" in message
    assert "whole run's rankings (1,000 prompts)" in message
    assert "raise HARMRANK_METRICS_MAX_BODY_BYTES on the metrics service" in message
    assert "harmrank run resume" in message


async def test_a_proxys_413_in_its_own_words_still_says_what_to_raise(
    executor_for: Callable[[FastAPI], ScoreExecutor],
) -> None:
    proxy = FastAPI()

    @proxy.post("/v1/report")
    async def refuse() -> HTMLResponse:  # nginx's answer past client_max_body_size
        return HTMLResponse("<html><h1>413 Request Entity Too Large</h1></html>", 413)

    work = score_work(200)
    with pytest.raises(TaskFailed) as raised:
        await executor_for(proxy).execute(work)
    failure = raised.value.failure
    assert (failure.error_type, failure.transient) == ("payload_too_large", False)
    assert "413 Request Entity Too Large" in failure.message
    assert f"(the request sent was {request_bytes(work):,} bytes)" in failure.message
    assert "raise HARMRANK_METRICS_MAX_BODY_BYTES" in failure.message
    assert "any proxy in front of it" in failure.message
