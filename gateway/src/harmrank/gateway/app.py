"""The gateway: harmrank's public API and the one owner of the result database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from harmrank.common.app import create_service_app
from harmrank.gateway import annotation, report_api, run_results
from harmrank.gateway.auth import token_middleware
from harmrank.gateway.datasets import router as datasets_router
from harmrank.gateway.datasets.upload import UploadLimits
from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.migrate import head_check, upgrade_async
from harmrank.gateway.rankings_import import router as rankings_router
from harmrank.gateway.runs.api import router as runs_router
from harmrank.gateway.runs.checks import Services
from harmrank.gateway.settings import GatewaySettings
from harmrank.gateway.telemetry import task_telemetry
from harmrank.gateway.worker_main import database_url, serve_loops

DESCRIPTION = (
    "Evaluate small LLMs' harmfulness and large LLMs as judges of it: upload prompt datasets and "
    "human rankings, create runs (generate, judge, score) that workers drive to completion, and "
    "read or export the results. Writes need a bearer token when the gateway has tokens set; reads "
    "too when it requires them."
)


@contextlib.asynccontextmanager
async def _worker_loops(settings: GatewaySettings, app: FastAPI) -> AsyncIterator[None]:
    if settings.worker_loops == 0:
        yield
        return
    stop = asyncio.Event()
    loops = asyncio.create_task(
        serve_loops(settings, app.state.sessions, settings.worker_loops, stop)
    )
    try:
        yield
    finally:
        stop.set()
        await loops


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """Build the gateway (``uvicorn --factory harmrank.gateway.app:create_app``)."""
    settings = settings or GatewaySettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database_url(settings))
        try:
            if settings.migrate_on_start:
                await upgrade_async(engine)
            app.state.sessions = session_factory(engine)
            # Ready only at the schema's head: a new pod must not serve an old schema.
            app.state.readiness["database"] = head_check(engine)
            async with (
                _worker_loops(settings, app),
                task_telemetry(app, interval_seconds=settings.telemetry_interval_seconds),
            ):
                yield
        finally:
            await engine.dispose()

    app = create_service_app(
        service="gateway",
        settings=settings,
        routers=[
            datasets_router,
            rankings_router,
            runs_router,
            run_results.router,
            report_api.runs_router,
            report_api.datasets_router,
            annotation.admin_router,
            annotation.page_router,
        ],
        description=DESCRIPTION,
        lifespan=lifespan,
        middleware=[token_middleware(settings)],
    )
    app.state.upload_limits = UploadLimits(max_text_chars=settings.max_text_chars)
    app.state.run_services = Services(str(settings.generator_url), str(settings.judge_url))
    return app
