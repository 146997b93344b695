"""A run's score task against the metrics service over real HTTP, at the sizes of large runs.

The score task sends a whole run's rankings in one report request; a run of ~80,000 prompts
made it larger than the 10 MiB every service accepted. The metrics service now takes what its
job needs by default, and a request still too large fails the task saying what was too large
and which setting to raise, whether the metrics service or a proxy in front of it refused it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from tests.conftest import ServeApp
from tests.gateway.runs.large_score import MODELS, request_body, score_work

from harmrank.common.http import RetryPolicy, create_client
from harmrank.gateway.runs.executors import ScoreExecutor
from harmrank.gateway.runs.failures import upstream_of
from harmrank.gateway.runs.tasks import TaskFailed
from harmrank.metrics.app import create_app as create_metrics
from harmrank.metrics.settings import MetricsSettings

TEN_MIB = 10 * 1024 * 1024


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
    work = score_work(11_000, id_length=480, resamples=10)
    assert len(request_body(work)) > TEN_MIB
    report: dict[str, Any] = await executor_for(create_metrics()).execute(work)
    assert report["run"] == {"prompts": 11_000}
    assert report["models"] == list(MODELS)
    assert report["settings"]["resamples"] == 10


async def test_a_report_request_over_the_limit_fails_the_task_saying_what_to_raise(
    executor_for: Callable[[FastAPI], ScoreExecutor],
) -> None:
    work = score_work(1_000)
    size = len(request_body(work))
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
    # The worker's: for how large a run, and what to do (the size once: the service said it).
    assert "the request sent was" not in message
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
    assert f"(the request sent was {len(request_body(work)):,} bytes)" in failure.message
    assert "raise HARMRANK_METRICS_MAX_BODY_BYTES" in failure.message
    assert "any proxy in front of it" in failure.message
