"""A run's report is computed once, by the metrics service its score task calls, and stored:
``report.html`` and the JSON report are both read from that stored report."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import select
from tests.gateway.runs.helpers import Fakes, Sessions, create, spec, work_until_settled

from harmrank.common.http import create_client
from harmrank.gateway.db.run_models import RunReport
from harmrank.metrics.app import create_app as create_metrics


class CountingTransport(httpx.ASGITransport):
    """The real metrics app, in-process, counting the requests it is sent."""

    def __init__(self) -> None:
        super().__init__(create_metrics())
        self.calls: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls[f"{request.method} {request.url.path}"] += 1
        return await super().handle_async_request(request)


async def tamper(sessions: Sessions, run_id: int, judge: str, na_rate: list[float]) -> None:
    """Write other N/A rates into the stored report, as if the service had answered them."""
    async with sessions.begin() as session:
        row = await session.scalar(select(RunReport).where(RunReport.run_id == run_id))
        assert row is not None
        report: dict[str, Any] = copy.deepcopy(row.report)  # a new value, so it is written
        report["annotators"][judge]["harm_rates"]["na_rate"] = na_rate
        row.report = report


async def test_the_score_task_calls_the_metrics_service_and_both_reports_read_its_answer(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    transport = CountingTransport()
    fakes = Fakes(metrics=create_client("http://metrics", timeout=60.0, transport=transport))
    run = await create(session_maker, spec(metrics={"p": 0.8, "resamples": 20, "seed": 2}))
    done = await work_until_settled(session_maker, fakes.executors(), run.id)
    assert done.status == "done", done
    assert transport.calls == {"POST /v1/report": 1}

    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    assert stored["settings"]["p"] == 0.8
    assert stored["run"]["judges"] == {"judge-x": 6}
    html = (await api.get(f"/v1/runs/{run.id}/report.html")).text
    assert "0.111" not in html
    assert "0.777" not in html

    await tamper(session_maker, run.id, "judge-x", [0.111, 0.777])
    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    assert stored["annotators"]["judge-x"]["harm_rates"]["na_rate"] == [0.111, 0.777]
    html = (await api.get(f"/v1/runs/{run.id}/report.html")).text
    assert "0.111" in html
    assert "0.777" in html
    assert transport.calls == {"POST /v1/report": 1}  # reading reports computes nothing


async def test_a_stored_report_that_cannot_be_read_is_a_clear_404(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    run = await create(session_maker, spec())
    done = await work_until_settled(session_maker, Fakes().executors(), run.id)
    assert done.status == "done", done
    async with session_maker.begin() as session:
        row = await session.scalar(select(RunReport).where(RunReport.run_id == run.id))
        assert row is not None
        row.report = {"run": {}, "models": ["small-a", "small-b"], "surprise": 1}
    page = await api.get(f"/v1/runs/{run.id}/report.html")
    assert (page.status_code, page.json()["error_type"]) == (404, "not_found")
    assert "surprise" in page.json()["error"]
    assert "resume the run" in page.json()["error"]


async def test_a_run_report_drawn_from_the_stored_report_opens_with_its_findings(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    run = await create(session_maker, spec())
    done = await work_until_settled(session_maker, Fakes().executors(), run.id)
    assert done.status == "done", done
    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    assert stored["findings"], stored.keys()
    html = (await api.get(f"/v1/runs/{run.id}/report.html")).text
    for finding in stored["findings"]:
        assert finding["text"].replace("'", "&#39;") in html
    assert html.index("<h2>Findings</h2>") < html.index("Agreement")

    # what the page shows is what is stored: an edited finding shows as edited
    async with session_maker.begin() as session:
        row = await session.scalar(select(RunReport).where(RunReport.run_id == run.id))
        assert row is not None
        report: dict[str, Any] = copy.deepcopy(row.report)
        report["findings"][0]["text"] = "a finding written into the stored report"
        row.report = report
    html = (await api.get(f"/v1/runs/{run.id}/report.html")).text
    assert "a finding written into the stored report" in html


async def test_a_run_can_resample_prompt_categories(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    metrics = {"p": 0.9, "resamples": 20, "seed": 1, "cluster_by": "category"}
    judges = [{"name": "judge-x"}, {"name": "judge-y"}]  # a pair, so there is agreement
    run = await create(session_maker, spec(metrics=metrics, judges=judges))
    done = await work_until_settled(session_maker, Fakes().executors(), run.id)
    assert done.status == "done", done
    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    assert stored["settings"]["cluster_key"] == "prompt category"
    assert "clusters of prompts (prompt category" in stored["conventions"]["bootstrap"]
    figures = [f for result in stored["agreement"] for f in result["figures"]]
    assert figures
    assert all(f["prompt_ci"] is not None for f in figures if f["ci_low"] is not None)
    html = (await api.get(f"/v1/runs/{run.id}/report.html")).text
    assert "clusters of prompts (prompt category" in html


async def test_a_run_without_cluster_by_resamples_prompts(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    judges = [{"name": "judge-x"}, {"name": "judge-y"}]
    run = await create(session_maker, spec(judges=judges))
    done = await work_until_settled(session_maker, Fakes().executors(), run.id)
    assert done.status == "done", done
    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    assert stored["settings"]["cluster_key"] is None
    assert "percentile bootstrap over prompts" in stored["conventions"]["bootstrap"]
    figures = [f for result in stored["agreement"] for f in result["figures"]]
    assert figures
    assert all(f["prompt_ci"] is None for f in figures)
