"""What a deployment needs of the database: readiness only at the schema's head, migrations that
pods started together can all run, and managed databases' ``?sslmode=`` URLs."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from harmrank.gateway.app import create_app
from harmrank.gateway.db.engine import create_engine, normalise_url
from harmrank.gateway.db.migrate import (
    check_current_async,
    downgrade_async,
    head_revisions,
    upgrade_async,
)
from harmrank.gateway.settings import GatewaySettings


async def _readyz(db_url: str) -> httpx.Response:
    settings = GatewaySettings(
        database_url=SecretStr(db_url), migrate_on_start=False, telemetry_interval_seconds=3600
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.get("/readyz")


async def test_readiness_requires_the_schema_at_head(
    db_url: str, migrated_engine: AsyncEngine
) -> None:
    assert (await _readyz(db_url)).status_code == 200
    await downgrade_async(migrated_engine, "-1")
    behind = await _readyz(db_url)
    assert behind.status_code == 503
    reason = behind.json()["checks"]["database"]
    assert "run harmrank migrate" in reason
    assert next(iter(head_revisions())) in reason
    await upgrade_async(migrated_engine)
    assert (await _readyz(db_url)).status_code == 200


async def test_readiness_on_a_database_never_migrated(db_url: str) -> None:
    response = await _readyz(db_url)
    assert response.status_code == 503
    assert "no revision" in response.json()["checks"]["database"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_pods_started_together_can_all_migrate(db_url: str) -> None:
    """Each gateway and worker pod runs ``harmrank migrate`` first; an advisory lock orders them."""
    engines = [create_engine(db_url, poolclass=NullPool) for _ in range(4)]
    try:
        await asyncio.gather(*(upgrade_async(engine) for engine in engines))
        assert await check_current_async(engines[0])
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db/h?sslmode=require", "postgresql+asyncpg://u:p@db/h?ssl=require"),
        (
            "postgres://u:p@db/h?sslmode=verify-full",
            "postgresql+asyncpg://u:p@db/h?ssl=verify-full",
        ),
        ("postgresql://u:p@db/h", "postgresql+asyncpg://u:p@db/h"),
        ("sqlite:///x.db?sslmode=require", "sqlite+aiosqlite:///x.db?sslmode=require"),
    ],
)
def test_sslmode_becomes_asyncpgs_ssl(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("mode", ["disable", "prefer"])
async def test_migrate_with_sslmode_against_postgres(db_url: str, mode: str) -> None:
    url = make_url(db_url).update_query_dict({"sslmode": mode})
    engine = create_engine(url, poolclass=NullPool)
    try:
        await upgrade_async(engine)
        assert await check_current_async(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_sslmode_require_reaches_the_server(db_url: str) -> None:
    """The test server has no TLS: asyncpg is asked for it (and refused), not handed a keyword
    it does not take."""
    url = make_url(db_url).update_query_dict({"sslmode": "require"})
    engine = create_engine(url, poolclass=NullPool)
    try:
        with pytest.raises(Exception, match=r"(?i)ssl") as raised:
            await upgrade_async(engine)
        assert not isinstance(raised.value, TypeError)
    finally:
        await engine.dispose()
