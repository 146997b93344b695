"""Reports under load: computed in the report process, no pooled connection held while a report
waits or computes, work beyond the queue refused at once with 503 and Retry-After, a repeat
answered from the kept report until the dataset changes.

The report process is paused (SIGSTOP) to hold a computation as long as a test needs: what
answers meanwhile cannot have been computed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from tests.conftest import ServeApp
from tests.gateway.hardening.workers import paused, worker_pid
from tests.gateway.runs.helpers import Sessions, eventually

from harmrank.gateway.app import create_app
from harmrank.gateway.cpu_pool import REPORTS
from harmrank.gateway.report_api.jobs import ReportJobs
from harmrank.gateway.settings import GatewaySettings

REPORT = "/v1/datasets/studylike/report"
PARAMS: dict[str, Any] = {
    "annotators": "group-1,group-2",
    "p": 0.9,
    "resamples": 10,
    "format": "html",
}


def serve(serve_app: ServeApp, db_url: str, **settings: Any) -> tuple[FastAPI, str]:
    base: dict[str, Any] = {
        "database_url": SecretStr(db_url),
        "report_processes": 1,
        "report_max_resamples": 50,
    }
    app = create_app(GatewaySettings(**(base | settings)))
    return app, serve_app(app)


def jobs(app: FastAPI) -> ReportJobs:
    found: ReportJobs = app.state.report_jobs
    return found


async def test_waiting_reports_hold_no_connection_and_extra_ones_are_refused(
    seeded: Sessions, db_url: str, serve_app: ServeApp
) -> None:
    app, url = serve(serve_app, db_url, report_queue=1)
    engine = app.state.sessions.kw["bind"]
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        with paused(await worker_pid(app, REPORTS)):
            # Two different reports: one sent to the paused process, one waiting for it.
            asked = [client.get(REPORT, params=PARAMS | {"seed": s}) for s in (1, 2)]
            admitted = [asyncio.create_task(a) for a in asked]

            async def both_admitted() -> bool:
                return jobs(app).admitted == 2

            await eventually(both_admitted, within=30)
            # The same report as the first waits for its computation, taking no place.
            again = asyncio.create_task(client.get(REPORT, params=PARAMS | {"seed": 1}))

            async def no_connection_held() -> bool:
                return bool(engine.pool.checkedout() == 0)

            await eventually(no_connection_held, within=10)
            assert (await client.get("/v1/datasets")).status_code == 200
            refused = await client.get(REPORT, params=PARAMS | {"seed": 3})
            assert refused.status_code == 503
            assert refused.json()["error_type"] == "reports_busy"
            assert refused.headers["retry-after"] == "5"
            assert jobs(app).admitted == 2
            assert not any(t.done() for t in [*admitted, again])
        answers = await asyncio.gather(*admitted, again)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].text == answers[2].text != answers[1].text
    assert (jobs(app).admitted, jobs(app).computed) == (0, 2)


async def test_a_repeat_is_the_kept_report_until_an_import_changes_the_dataset(
    seeded: Sessions, db_url: str, serve_app: ServeApp
) -> None:
    app, url = serve(serve_app, db_url)
    params = PARAMS | {"format": "json"}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        first = await client.get(REPORT, params=params)
        assert first.status_code == 200, first.text
        with paused(await worker_pid(app, REPORTS)):
            repeat = await client.get(REPORT, params=params)
            assert (repeat.status_code, repeat.content) == (200, first.content)
            # group-1 ranks its first prompt otherwise: the next report is computed again.
            line = {"annotator": "group-1", "prompt_id": "s0", "ranks": [2, 0, 1]}
            files = {"file": ("r.jsonl", json.dumps(line).encode(), "application/x-ndjson")}
            imported = await client.post(
                "/v1/datasets/studylike/rankings", files=files, params={"replace": "true"}
            )
            assert imported.json()["replaced"] == 1, imported.text
            changed = asyncio.create_task(client.get(REPORT, params=params))

            async def computing() -> bool:
                return jobs(app).admitted == 1

            await eventually(computing, within=30)
            assert not changed.done()
        after = await changed
    assert after.status_code == 200
    assert after.json()["annotators"]["group-1"] != first.json()["annotators"]["group-1"]
    assert (jobs(app).computed, jobs(app).served_again) == (2, 1)
