"""A database that is not migrated or not reachable: 503 with the reason, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from tests.conftest import ServeApp, free_port
from tests.gateway.hardening.conftest import MakeGateway

from harmrank.gateway.app import create_app
from harmrank.gateway.db.engine import create_engine
from harmrank.gateway.db.migrate import upgrade_async
from harmrank.gateway.db.readiness import database_error
from harmrank.gateway.settings import GatewaySettings

# Every kind of route: lists, one item, reports, writes, the annotation page and its API.
ROUTES = [
    ("GET", "/v1/datasets"),
    ("GET", "/v1/datasets/toy"),
    ("GET", "/v1/datasets/toy/responses"),
    ("GET", "/v1/datasets/toy/report?annotators=a&p=0.9"),
    ("GET", "/v1/runs"),
    ("GET", "/v1/runs/1"),
    ("GET", "/v1/runs/1/report.html"),
    ("POST", "/v1/runs"),
    ("GET", "/annotate/api/state"),
    ("GET", "/v1/datasets/toy/annotation/progress"),
]


def assert_refused(url: str, error_type: str, reason: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for method, path in ROUTES:
            answer = client.request(method, path, json={} if method == "POST" else None)
            assert answer.status_code == 503, (method, path, answer.status_code, answer.text)
            assert answer.json()["error_type"] == error_type, (path, answer.text)
            assert reason in answer.json()["error"]
            assert answer.headers["retry-after"] == "5"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert reason in ready.json()["checks"]["database"]
        assert client.get("/healthz").status_code == 200  # alive, only not ready
        assert client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("revision", [None, "0002"])
async def test_an_unmigrated_database_is_a_503_on_every_route(
    db_url: str, make_gateway: MakeGateway, revision: str | None
) -> None:
    if revision is not None:  # migrated part of the way: an older gateway's schema
        engine = create_engine(db_url)
        try:
            await upgrade_async(engine, revision)
        finally:
            await engine.dispose()
    url = make_gateway()
    assert_refused(url, "database_not_migrated", "database not migrated")


async def test_routes_serve_once_the_database_is_migrated(
    db_url: str, make_gateway: MakeGateway
) -> None:
    async with httpx.AsyncClient(base_url=make_gateway(), timeout=30) as client:
        assert (await client.get("/v1/datasets")).status_code == 503
        engine = create_engine(db_url)
        try:
            await upgrade_async(engine)
        finally:
            await engine.dispose()
        assert (await client.get("/readyz")).json()["checks"] == {"database": "ok"}
        assert (await client.get("/v1/datasets")).status_code == 200


def test_an_unreachable_database_is_a_503_with_the_reason(serve_app: ServeApp) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    url = serve_app(create_app(GatewaySettings(database_url=SecretStr(closed))))
    assert_refused(url, "database_unavailable", "database unreachable")


async def test_a_connection_pool_that_stays_full_is_a_503_not_a_500() -> None:
    # What every route raised when the pool had no connection to give within its timeout.
    full = sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")
    request = Request({"type": "http", "app": FastAPI(), "headers": []})
    answer = await database_error(request, full)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    body = json.loads(bytes(answer.body))
    assert body["error_type"] == "database_unavailable"
    assert "QueuePool limit of size 5 overflow 10 reached" in body["error"]
