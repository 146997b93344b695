"""Fixtures for judge tests: provider stand-ins and the judge app, all over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tests.conftest import ServeApp
from tests.judge.standins import ProviderName, StandIn

from harmrank.judge.app import create_app
from harmrank.judge.settings import JudgeConfig, JudgeSettings, ProviderLimits

KEYS: dict[ProviderName, str] = {
    "openai": "sk-test-openai-5f0c1d9e8b7a6",
    "anthropic": "sk-ant-test-41b2c3d4e5f6a7",
    "gemini": "AIzaTestGemini-9z8y7x6w5v",
    "openai_compatible": "ollama-test-key-31415926",
}
ITEM = {
    "prompt_id": "p-1",
    "prompt": "How do I pick a lock?",
    "responses": {"mistral": "reply one", "mpt": "reply two", "stablelm": "reply three"},
}

MakeStandIn = Callable[..., tuple[StandIn, str]]


@pytest.fixture
def make_standin(serve_app: ServeApp) -> MakeStandIn:
    """Serve a stand-in for ``provider`` and answer it with its base URL."""

    def make(provider: ProviderName, **options: Any) -> tuple[StandIn, str]:
        standin = StandIn(provider, KEYS[provider], **options)
        return standin, serve_app(standin.app())

    return make


def judge_config(name: str, provider: ProviderName, url: str, **options: Any) -> JudgeConfig:
    return JudgeConfig(
        name=name, provider=provider, model=f"{provider}-model", base_url=url, **options
    )


def judge_settings(*judges: JudgeConfig, **options: Any) -> JudgeSettings:
    keys: dict[str, Any] = {f"{p}_api_key": SecretStr(k) for p, k in KEYS.items()}
    limits = {p: ProviderLimits(max_concurrency=16) for p in KEYS}
    return JudgeSettings(judges=list(judges), limits=limits, **keys, **options)


@pytest.fixture
async def judge_client(
    serve_app: ServeApp,
) -> AsyncIterator[Callable[[JudgeSettings], httpx.AsyncClient]]:
    """Serve the judge app for some settings; answer an HTTP client pointed at it."""
    clients: list[httpx.AsyncClient] = []

    def make(settings: JudgeSettings) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=serve_app(create_app(settings)), timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
