"""A gateway app with the dataset, rankings-import and annotation routers, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from harmrank.common.app import create_service_app
from harmrank.common.settings import ServiceSettings
from harmrank.gateway import annotation, datasets, listings, rankings_import
from harmrank.gateway.auth import TokenMiddleware
from harmrank.gateway.db import Annotator, AnnotatorKind, Dataset, Model, Prompt, Response
from harmrank.gateway.db.engine import create_engine, session_factory

Sessions = async_sessionmaker[AsyncSession]
MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
DATASET = "calm"


def make_app(db_url: str, tokens: Sequence[str] = (), extra: Sequence[APIRouter] = ()) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(db_url)
        app.state.sessions = session_factory(engine)
        yield
        await engine.dispose()

    return create_service_app(
        service="gateway",
        settings=ServiceSettings(),
        routers=[
            datasets.router,
            listings.datasets_router,
            rankings_import.router,
            annotation.admin_router,
            annotation.page_router,
            *extra,
        ],
        lifespan=lifespan,
        middleware=[Middleware(TokenMiddleware, tokens=[SecretStr(t) for t in tokens])],
    )


@pytest.fixture
def base_url(serve_app: Callable[[ASGIApp], str], db_url: str, migrated_engine: AsyncEngine) -> str:
    return serve_app(make_app(db_url))


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    responses: tuple[str, ...]


def calm_items(n: int) -> list[Item]:
    return [
        Item(f"p{i}", f"Calm question {i}", tuple(f"{m} answers {i} calmly" for m in MODELS))
        for i in range(1, n + 1)
    ]


async def seed_dataset(
    client: httpx.AsyncClient, sessions: Sessions, items: Sequence[Item], name: str = DATASET
) -> str:
    """Upload the prompts through the API, then store a response of each model and a judge."""
    body = "\n".join(f'{{"text": "{i.text}", "id": "{i.id}"}}' for i in items).encode()
    uploaded = await client.post(
        "/v1/datasets",
        files={"file": ("p.jsonl", body, "application/x-ndjson")},
        data={"name": name},
    )
    assert uploaded.status_code == 201, uploaded.text
    async with sessions() as session:
        models = list(await session.scalars(select(Model).order_by(Model.position)))
        if not models:
            models = [Model(name=m, display_name=m, position=i) for i, m in enumerate(MODELS)]
            session.add_all([*models, Annotator(name="gpt4o", kind=AnnotatorKind.JUDGE)])
            await session.flush()
        prompts = {
            p.external_id: p.id
            for p in await session.scalars(
                select(Prompt).join(Prompt.dataset).where(Dataset.name == name)
            )
        }
        for item in items:
            session.add_all(
                Response(
                    prompt_id=prompts[item.id],
                    model_id=m.id,
                    text=text,
                    generation_key="g",
                    source="seed",
                )
                for m, text in zip(models, item.responses, strict=True)
            )
        await session.commit()
    return name


async def invite(client: httpx.AsyncClient, count: int = 1, dataset: str = DATASET) -> list[str]:
    made = await client.post(
        f"/v1/datasets/{dataset}/annotation/invitations", json={"count": count}
    )
    assert made.status_code == 201, made.text
    return [i["token"] for i in made.json()["invitations"]]


class SignIn(Protocol):
    async def __call__(
        self, name: str, token: str, *, accept: bool = True
    ) -> httpx.AsyncClient: ...


@pytest.fixture
async def sign_in(base_url: str) -> AsyncIterator[SignIn]:
    """Clients signed in as annotators (each keeps its session cookie); closed afterwards."""
    clients: list[httpx.AsyncClient] = []

    async def signed_in(name: str, token: str, *, accept: bool = True) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=base_url, timeout=30)
        clients.append(client)
        signed = await client.post("/annotate/api/session", json={"name": name, "token": token})
        assert signed.status_code == 200, signed.text
        if accept:
            assert (await client.post("/annotate/api/warning")).status_code == 200
        return client

    yield signed_in
    for client in clients:
        await client.aclose()


def by_label(item: dict[str, Any], canonical: Sequence[int]) -> dict[str, int]:
    """Ranks by the item's labels from ranks in canonical model order (texts name the model)."""
    out = {}
    for shown in item["responses"]:
        model = next(i for i, m in enumerate(MODELS) if shown["text"].startswith(f"{m} "))
        out[shown["label"]] = canonical[model]
    return out


async def rank_next(client: httpx.AsyncClient, canonical: Sequence[int]) -> dict[str, Any]:
    """Rank the annotator's next item with the given canonical ranks; answers the item."""
    item = (await client.get("/annotate/api/next")).json()
    assert not item["finished"], item
    body = {"ranks": by_label(item, canonical), "seconds": 1.5}
    done = await client.post(f"/annotate/api/items/{item['prompt_id']}/ranking", json=body)
    assert done.status_code == 200, done.text
    return dict(item)
