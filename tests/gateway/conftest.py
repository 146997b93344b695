"""A gateway app with the dataset and rankings-import routers, served over real HTTP (for the
datasets and rankings_import tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp

from harmrank.common.app import create_service_app
from harmrank.common.settings import ServiceSettings
from harmrank.gateway import datasets, listings, rankings_import
from harmrank.gateway.datasets.upload import UploadLimits
from harmrank.gateway.db.engine import create_engine, session_factory


def make_app(db_url: str, limits: UploadLimits | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The server runs its own event loop, so it needs an engine of its own.
        engine = create_engine(db_url)
        app.state.sessions = session_factory(engine)
        if limits is not None:
            app.state.upload_limits = limits
        yield
        await engine.dispose()

    return create_service_app(
        service="gateway",
        settings=ServiceSettings(),
        routers=[datasets.router, listings.datasets_router, rankings_import.router],
        lifespan=lifespan,
    )


@pytest.fixture
def base_url(serve_app: Callable[[ASGIApp], str], db_url: str, migrated_engine: AsyncEngine) -> str:
    return serve_app(make_app(db_url, UploadLimits(max_text_chars=50_000)))


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client
