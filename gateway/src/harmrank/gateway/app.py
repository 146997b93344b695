"""The gateway: harmrank's public API and the one owner of the result database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware import Middleware

from harmrank.common.app import create_service_app
from harmrank.gateway import (
    annotation,
    datasets,
    explore,
    listings,
    rankings_import,
    report_api,
    runs,
)
from harmrank.gateway.annotation.sign_in_limit import SignInLimiter
from harmrank.gateway.auth import OPEN_PATHS, token_middleware
from harmrank.gateway.cpu_pool import PARSE, REPORTS, cpu_pools
from harmrank.gateway.datasets.upload import UploadLimits
from harmrank.gateway.db.engine import create_engine, database_url, session_factory
from harmrank.gateway.db.migrate import upgrade_async
from harmrank.gateway.db.readiness import (
    DATABASE_ERRORS,
    DatabaseGateMiddleware,
    DatabaseState,
    database_error,
)
from harmrank.gateway.edge import StorableTextMiddleware
from harmrank.gateway.page_headers import PageHeadersMiddleware
from harmrank.gateway.report_api.jobs import ReportJobs, ReportLimits
from harmrank.gateway.runs.checks import Services
from harmrank.gateway.settings import GatewaySettings
from harmrank.gateway.telemetry import task_telemetry
from harmrank.gateway.worker_main import serve_loops

DESCRIPTION = (
    "Evaluate small LLMs' harmfulness and large LLMs as judges of it: upload prompt datasets and "
    "human rankings, create runs (generate, judge, score) that workers drive to completion, and "
    "read or export the results. Writes need a bearer token when the gateway has tokens set; reads "
    "too when it requires them."
)


# Each domain package exports its routers; they are included in this order.
ROUTERS = (
    datasets.router,
    listings.datasets_router,
    rankings_import.router,
    runs.router,
    listings.runs_router,
    report_api.runs_router,
    report_api.datasets_router,
    annotation.admin_router,
    annotation.page_router,
    explore.router,
    explore.page_router,
)


@contextlib.asynccontextmanager
async def _worker_loops(settings: GatewaySettings, engine: AsyncEngine) -> AsyncIterator[None]:
    if settings.worker_loops == 0:
        yield
        return
    stop = asyncio.Event()
    loops = asyncio.create_task(serve_loops(settings, engine, settings.worker_loops, stop))
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
            app.state.database = DatabaseState(engine)
            app.state.readiness["database"] = app.state.database.readiness
            pools = {PARSE: settings.parse_processes, REPORTS: settings.report_processes}
            async with (
                app.state.run_services.opened(),
                cpu_pools(app.state, pools) as running,
                _worker_loops(settings, engine),
                task_telemetry(app, interval_seconds=settings.telemetry_interval_seconds),
            ):
                app.state.report_jobs = ReportJobs(ReportLimits.of(settings), running[REPORTS])
                yield
        finally:
            await engine.dispose()

    app = create_service_app(
        service="gateway",
        settings=settings,
        routers=ROUTERS,
        description=DESCRIPTION,
        lifespan=lifespan,
        middleware=[
            token_middleware(settings),
            Middleware(DatabaseGateMiddleware, open_paths=OPEN_PATHS),
            Middleware(StorableTextMiddleware),
            Middleware(PageHeadersMiddleware),
        ],
    )
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, database_error)
    app.state.upload_limits = UploadLimits(max_text_chars=settings.max_text_chars)
    app.state.run_services = Services(str(settings.generator_url), str(settings.judge_url))
    app.state.sign_in_limiter = SignInLimiter(
        settings.sign_in_attempts, settings.sign_in_window_seconds
    )
    return app
