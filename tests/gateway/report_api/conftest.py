"""The gateway over real HTTP with the toy dataset and the study-like one (humans included)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import ServeApp
from tests.gateway.run_results.helpers import gateway_app, seed_study_like
from tests.gateway.runs.helpers import Sessions, seed_dataset

from harmrank.gateway.settings import GatewaySettings


@pytest.fixture
async def api(
    db_url: str, migrated_engine: AsyncEngine, session_maker: Sessions, serve_app: ServeApp
) -> AsyncIterator[httpx.AsyncClient]:
    await seed_dataset(session_maker)
    await seed_study_like(session_maker)
    settings = GatewaySettings(report_max_resamples=500)
    base_url = serve_app(gateway_app(db_url, settings))
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        yield client
