"""Generator fixtures: TGI stand-ins and the generator app, each served over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp
from tests.generator.helpers import FAST_RETRY, StartGenerator, StartStandin
from tests.generator.tgi_standin import Standin, StandinState

from harmrank.generator.app import create_app
from harmrank.generator.settings import GeneratorSettings, ModelConfig

ServeApp = Callable[[ASGIApp], str]


@pytest.fixture
def start_standin(serve_app: ServeApp) -> StartStandin:
    """Serve a new TGI stand-in; answers it and its base URL."""

    def start(**state: Any) -> tuple[Standin, str]:
        standin = Standin(StandinState(**state))
        return standin, serve_app(standin.app)

    return start


@pytest.fixture
def start_generator(serve_app: ServeApp) -> StartGenerator:
    """Serve the generator app over a given registry; answers its base URL."""

    def start(models: list[ModelConfig], **settings: Any) -> str:
        settings.setdefault("retry", FAST_RETRY)
        return serve_app(create_app(GeneratorSettings(models=models, **settings)))

    return start


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http
