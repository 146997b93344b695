"""The runs router over real HTTP, on an app built like every service's, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import ServeApp
from tests.gateway.runs.helpers import Fakes, Sessions, seed_dataset, spec, work_until_settled

from harmrank.common.app import create_service_app
from harmrank.common.settings import ServiceSettings
from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.run_models import Run
from harmrank.gateway.runs.api import REPLAYED_HEADER, router


def gateway_app(db_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Made in the server's own event loop: an engine must not cross loops.
        engine = create_engine(db_url)
        app.state.sessions = session_factory(engine)
        yield
        await engine.dispose()

    return create_service_app(
        service="gateway", settings=ServiceSettings(), routers=[router], lifespan=lifespan
    )


@pytest.fixture
async def api(
    db_url: str, migrated_engine: AsyncEngine, session_maker: Sessions, serve_app: ServeApp
) -> AsyncIterator[httpx.AsyncClient]:
    await seed_dataset(session_maker)
    async with httpx.AsyncClient(base_url=serve_app(gateway_app(db_url)), timeout=30) as client:
        yield client


def body(**changes: Any) -> dict[str, Any]:
    return spec(**changes).model_dump(mode="json")


async def test_create_then_read_a_run(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/runs", json=body())
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["status"] == "queued"
    assert run["progress"]["generate"]["queued"] == 12
    assert run["has_report"] is False

    assert (await api.get(f"/v1/runs/{run['id']}")).json() == run
    missing = await api.get("/v1/runs/999999")
    assert missing.status_code == 404
    assert missing.json()["error_type"] == "not_found"


async def test_an_invalid_run_is_refused(api: httpx.AsyncClient) -> None:
    one_model = await api.post("/v1/runs", json=body() | {"models": [{"name": "solo"}]})
    assert one_model.status_code == 422
    no_dataset = await api.post("/v1/runs", json=body(prompts={"dataset": "nope"}))
    assert (no_dataset.status_code, no_dataset.json()["error_type"]) == (422, "validation")


async def test_an_idempotency_key_makes_one_run(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = await api.post("/v1/runs", json=body(), headers=headers)
    again = await api.post("/v1/runs", json=body(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers[REPLAYED_HEADER] == "true"
    assert REPLAYED_HEADER not in first.headers
    # The same request with its defaults left out (body() spells every one of them out).
    terse = spec().model_dump(mode="json", exclude_defaults=True)
    assert "human_reference" not in terse["metrics"]
    replayed = await api.post("/v1/runs", json=terse, headers=headers)
    assert (replayed.status_code, replayed.json()["id"]) == (201, first.json()["id"])

    other = await api.post("/v1/runs", json=body(max_attempts=2), headers=headers)
    assert (other.status_code, other.json()["error_type"]) == (409, "conflict")
    assert len((await api.get("/v1/runs")).json()["items"]) == 1


async def test_concurrent_requests_with_one_key_make_one_run(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    headers = {"Idempotency-Key": "race"}
    answers = await asyncio.gather(
        *(api.post("/v1/runs", json=body(), headers=headers) for _ in range(4))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    async with session_maker() as session:
        assert await session.scalar(select(func.count()).select_from(Run)) == 1


async def test_list_filters_by_status_and_pages(api: httpx.AsyncClient) -> None:
    ids = [(await api.post("/v1/runs", json=body())).json()["id"] for _ in range(3)]
    await api.post(f"/v1/runs/{ids[1]}/cancel")

    page = (await api.get("/v1/runs", params={"limit": 2})).json()
    assert [r["id"] for r in page["items"]] == [ids[2], ids[1]]
    rest = (await api.get("/v1/runs", params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert ([r["id"] for r in rest["items"]], rest["next_cursor"]) == ([ids[0]], None)

    cancelled = (await api.get("/v1/runs", params={"status": "cancelled"})).json()
    assert [r["id"] for r in cancelled["items"]] == [ids[1]]
    queued = (await api.get("/v1/runs", params={"status": "queued"})).json()
    assert [r["id"] for r in queued["items"]] == [ids[2], ids[0]]
    bad = await api.get("/v1/runs", params={"cursor": str(ids[1])})  # an id is not a cursor
    assert (bad.status_code, bad.json()["error_type"]) == (422, "invalid_cursor")


async def test_cancel_resume_tasks_and_report(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    run_id = (await api.post("/v1/runs", json=body())).json()["id"]
    cancelled = (await api.post(f"/v1/runs/{run_id}/cancel")).json()
    assert (cancelled["status"], cancelled["progress"]["judge"]["cancelled"]) == ("cancelled", 12)
    resumed = (await api.post(f"/v1/runs/{run_id}/resume")).json()
    assert (resumed["status"], resumed["cancelled_at"]) == ("queued", None)

    no_report = await api.get(f"/v1/runs/{run_id}/report")
    assert (no_report.status_code, no_report.json()["error_type"]) == (404, "not_found")
    await work_until_settled(session_maker, Fakes().executors(), run_id)

    report = (await api.get(f"/v1/runs/{run_id}/report")).json()
    assert list(report["annotators"]) == ["judge-x"]
    tasks = (await api.get(f"/v1/runs/{run_id}/tasks", params={"stage": "judge"})).json()
    assert len(tasks["items"]) == 12
    first = tasks["items"][0]
    assert (first["judge"], first["prompt"], first["state"], first["order_index"]) == (
        "judge-x",
        "p0",
        "done",
        0,
    )
    page = (await api.get(f"/v1/runs/{run_id}/tasks", params={"limit": 20})).json()
    after = (
        await api.get(f"/v1/runs/{run_id}/tasks", params={"cursor": page["next_cursor"]})
    ).json()
    assert len(page["items"]) + len(after["items"]) == 25
    assert (await api.get(f"/v1/runs/{run_id}/tasks", params={"state": "nope"})).status_code == 422
