"""Writes need a bearer token; tokens are compared in constant time, every one of them."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from harmrank.gateway import auth
from harmrank.gateway.app import create_app
from harmrank.gateway.db.engine import sqlite_url
from harmrank.gateway.settings import GatewaySettings

TOKENS = ["first-token-0a1b2c", "second-token-3d4e5f", "third-token-6a7b8c"]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway on a SQLite file, its lifespan run, over ASGI."""
    settings = GatewaySettings(
        api_tokens=[SecretStr(t) for t in TOKENS],
        database_url=SecretStr(sqlite_url(tmp_path / "gateway.db")),
        migrate_on_start=True,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        yield client


def write_operations() -> list[tuple[str, str]]:
    settings = GatewaySettings()
    paths = create_app(settings).openapi()["paths"]
    # Routes with authentication of their own (the annotation page) are another test's.
    exempt = tuple(getattr(settings, "auth_exempt_prefixes", ("/annotate/",)))
    return [
        (method.upper(), path.replace("{run_id}", "1").replace("{name}", "demo"))
        for path, operations in paths.items()
        for method in operations
        if method.upper() in auth.WRITE_METHODS and not auth.exempt_path(path, exempt)
    ]


def test_the_gateway_has_write_routes_to_protect() -> None:
    assert {path for _, path in write_operations()} >= {"/v1/runs", "/v1/datasets"}


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer ", "Basic Zmlyc3Q=", "first"])
async def test_every_write_route_refuses_a_missing_or_wrong_token(
    gateway: httpx.AsyncClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    for method, path in write_operations():
        answer = await gateway.request(method, path, headers=headers, json={})
        assert answer.status_code == 401, (method, path)
        assert answer.json() == {
            "error": "a valid bearer token is required to write",
            "error_type": "unauthorized",
        }
        assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_a_token_that_is_a_prefix_or_extension_of_a_valid_one_is_refused(
    gateway: httpx.AsyncClient,
) -> None:
    for guess in (TOKENS[0][:-1], TOKENS[0] + "x", TOKENS[0].upper()):
        answer = await gateway.post(
            "/v1/runs", json={}, headers={"Authorization": f"Bearer {guess}"}
        )
        assert answer.status_code == 401


async def test_a_valid_token_passes_to_the_route(gateway: httpx.AsyncClient) -> None:
    for token in TOKENS:
        answer = await gateway.post(
            "/v1/runs", json={}, headers={"Authorization": f"Bearer {token}"}
        )
        # Past the middleware: the route's own validation answers.
        assert (answer.status_code, answer.json()["error_type"]) == (422, "validation")


def recording_compare(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[Any, Any]]:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def compare(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    # auth calls hmac.compare_digest through the module: patch it there, where it is looked up.
    monkeypatch.setattr(hmac, "compare_digest", compare)
    return calls


@pytest.mark.parametrize("given", [TOKENS[0], TOKENS[2], "wrong", ""])
def test_token_matches_compares_every_token_with_compare_digest(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    calls = recording_compare(monkeypatch)
    tokens = [SecretStr(t) for t in TOKENS]
    assert auth.token_matches(given, tokens) is (given in TOKENS)
    # Every configured token, whether or not an earlier one matched: no early exit.
    assert calls == [(given.encode(), t.encode()) for t in TOKENS]


async def test_the_middleware_compares_through_token_matches(
    monkeypatch: pytest.MonkeyPatch, gateway: httpx.AsyncClient
) -> None:
    calls = recording_compare(monkeypatch)
    await gateway.post("/v1/runs", json={}, headers={"Authorization": "Bearer guess"})
    assert [b for _, b in calls] == [t.encode() for t in TOKENS]


async def test_reads_stay_open(gateway: httpx.AsyncClient) -> None:
    answer = await gateway.get("/healthz")
    assert answer.status_code == 200
