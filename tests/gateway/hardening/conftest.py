"""The real gateway app (``create_app``) over real HTTP, on both backends, with the toy and the
study-like datasets: what an adversarial client meets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import ServeApp
from tests.gateway.run_results.helpers import seed_study_like
from tests.gateway.runs.helpers import Sessions, seed_dataset

from harmrank.gateway.app import create_app
from harmrank.gateway.settings import GatewaySettings

MakeGateway = Callable[..., str]


@pytest.fixture
def make_gateway(db_url: str, serve_app: ServeApp) -> MakeGateway:
    """Serve a real gateway on the test database; answers its base URL."""

    def make(**settings: Any) -> str:
        base: dict[str, Any] = {"database_url": SecretStr(db_url), "report_max_resamples": 500}
        return serve_app(create_app(GatewaySettings(**(base | settings))))

    return make


@pytest.fixture
async def seeded(migrated_engine: AsyncEngine, session_maker: Sessions) -> Sessions:
    await seed_dataset(session_maker)
    await seed_study_like(session_maker)
    return session_maker


@pytest.fixture
async def api(seeded: Sessions, make_gateway: MakeGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=make_gateway(), timeout=120) as client:
        yield client
