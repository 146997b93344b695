"""The explorer on its own: its page and API over one database, without the rest of the gateway
(``harmrank explore`` serves what ``harmrank reproduce`` stored this way)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import quote, urlencode

from fastapi import FastAPI
from sqlalchemy import inspect
from starlette.middleware import Middleware

from harmrank.common.app import create_service_app
from harmrank.common.errors import HarmrankError
from harmrank.common.settings import ServiceSettings
from harmrank.gateway.db.engine import create_engine, redact_url, session_factory
from harmrank.gateway.explore.api import page_router, router

HOST = "127.0.0.1"  # offensive texts and no token: the local explorer is never public
DEFAULT_PORT = 8010


def local_explorer_url(dataset: str, port: int = DEFAULT_PORT) -> str:
    """Where ``harmrank explore`` shows a dataset (the reproduction's report links here)."""
    return f"http://{HOST}:{port}/explore/?{urlencode({'dataset': dataset}, quote_via=quote)}"


class NotADatabase(HarmrankError):
    """The database has no harmrank tables (not made by the migrations)."""

    status_code = 503
    error_type = "database_not_migrated"


async def check_database(url: str) -> None:
    """Refuse a database without harmrank's tables, naming it (an empty SQLite file, say)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    if not {"datasets", "prompts", "rankings"} <= tables:
        raise NotADatabase(f"{redact_url(url)} holds no harmrank results (no datasets table)")


def create_explorer_app(db_url: str, middleware: Sequence[Middleware] = ()) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(db_url)
        app.state.sessions = session_factory(engine)
        try:
            yield
        finally:
            await engine.dispose()

    return create_service_app(
        service="explorer",
        settings=ServiceSettings(),
        routers=[router, page_router],
        lifespan=lifespan,
        middleware=middleware,
        description="The harmrank explorer: every sample, its responses and its rankings.",
    )
