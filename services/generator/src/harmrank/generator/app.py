"""The generator service: the small models behind Text Generation Inference."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from harmrank.common.app import create_service_app
from harmrank.generator.api import router
from harmrank.generator.service import GeneratorService
from harmrank.generator.settings import GeneratorSettings
from harmrank.generator.telemetry import GeneratorTelemetry

DESCRIPTION = (
    "Answers prompts with the configured small models, each served by its own Text Generation "
    "Inference server (or an OpenAI-compatible one, or a local transformers folder). Bounds "
    "concurrency per model, retries overload with backoff, and records the served model's id "
    "and revision with every response."
)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    service = GeneratorService.from_settings(app.state.settings, app.state.generator_telemetry)
    app.state.generator = service
    try:
        yield
    finally:
        await service.aclose()


def create_app(settings: GeneratorSettings | None = None) -> FastAPI:
    """Build the generator app (``uvicorn --factory harmrank.generator.app:create_app``)."""
    app = create_service_app(
        service="generator",
        settings=settings or GeneratorSettings(),
        routers=[router],
        description=DESCRIPTION,
        lifespan=_lifespan,
    )
    app.state.generator_telemetry = GeneratorTelemetry(app.state.registry)
    return app
