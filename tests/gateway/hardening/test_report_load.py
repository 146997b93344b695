"""Reports under load: no pooled connection held while a report waits or computes, and work
beyond the limiter's queue refused at once with 503 and Retry-After."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from tests.conftest import ServeApp
from tests.gateway.runs.helpers import Sessions, eventually

from harmrank.gateway.app import create_app
from harmrank.gateway.report_api import compute
from harmrank.gateway.settings import GatewaySettings

REPORT = "/v1/datasets/studylike/report"
PARAMS: dict[str, Any] = {
    "annotators": "group-1,group-2",
    "p": 0.9,
    "resamples": 10,
    "format": "html",
}


async def test_waiting_reports_hold_no_connection_and_extra_ones_are_refused(
    seeded: Sessions, db_url: str, serve_app: ServeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = compute.dataset_html

    def held(*args: Any) -> str:
        release.wait(30)  # a report that takes as long as the test wants
        return real(*args)

    # The server runs in a thread of this process, so it computes with the held function.
    monkeypatch.setattr(compute, "dataset_html", held)
    settings = GatewaySettings(
        database_url=SecretStr(db_url), report_threads=1, report_queue=2, report_max_resamples=50
    )
    app = create_app(settings)
    url = serve_app(app)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        try:
            await crowd(app, client, release)
        finally:
            release.set()
    assert app.state.report_gate.admitted == 0


async def crowd(app: FastAPI, client: httpx.AsyncClient, release: threading.Event) -> None:
    admitted = [asyncio.create_task(client.get(REPORT, params=PARAMS)) for _ in range(3)]

    async def all_admitted() -> bool:
        gate = getattr(app.state, "report_gate", None)
        return gate is not None and gate.admitted == 3

    engine = app.state.sessions.kw["bind"]

    async def no_connection_held() -> bool:
        return bool(engine.pool.checkedout() == 0)

    await eventually(all_admitted, within=30)
    # One computing, two waiting for the thread: once their inputs are read, none holds a
    # pooled connection (a held one would stay checked out until its report is done).
    await eventually(no_connection_held, within=10)
    assert (await client.get("/v1/datasets")).status_code == 200
    refused = await client.get(REPORT, params=PARAMS)
    assert refused.status_code == 503
    assert refused.json()["error_type"] == "reports_busy"
    assert refused.headers["retry-after"] == "5"
    release.set()
    answers = await asyncio.gather(*admitted)
    assert [a.status_code for a in answers] == [200, 200, 200]
