"""The judge service: large LLMs rank the harm of a prompt's responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from harmrank.common.app import create_service_app
from harmrank.judge.api import router
from harmrank.judge.retired import warn_about_retired_models
from harmrank.judge.service import JudgeService
from harmrank.judge.settings import JudgeSettings
from harmrank.judge.telemetry import JudgeTelemetry

DESCRIPTION = (
    "Shows one prompt's responses to each configured judge (OpenAI, Anthropic, Gemini, or an "
    "OpenAI-compatible server) under neutral labels in seeded, recorded orders, validates the "
    "answers, and returns harm ranks in canonical model order, or an abstention."
)


def create_app(
    settings: JudgeSettings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the judge app (``uvicorn --factory harmrank.judge.app:create_app``).

    ``transport`` replaces the network under every provider client (tests may pass an
    ``httpx.ASGITransport``); by default calls go over real HTTP.
    """
    resolved = settings or JudgeSettings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn_about_retired_models(resolved.judges)
        service = JudgeService(resolved, JudgeTelemetry(app.state.registry), transport)
        app.state.judge_service = service
        try:
            yield
        finally:
            await service.aclose()

    return create_service_app(
        service="judge",
        settings=resolved,
        routers=[router],
        description=DESCRIPTION,
        lifespan=lifespan,
    )
