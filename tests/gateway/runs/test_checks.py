"""POST /v1/runs checks every name against the database, the generator and the judge service
(real ones, over HTTP, in front of the demonstration servers), on both databases, and a run that
fails a check leaves nothing behind: the services are asked while it is planned, and the
request's transaction is rolled back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from tests.conftest import ServeApp, free_port
from tests.demo.helpers import downstreams
from tests.gateway.runs.helpers import seed_dataset, spec
from tests.gateway.runs.plans import sent_statements

from harmrank.common.errors import InvalidInput
from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.db.models import Model
from harmrank.gateway.db.run_models import Run, Task
from harmrank.gateway.runs import service
from harmrank.gateway.runs.checks import Checkpoint, Services, plan_checked
from harmrank.gateway.runs.schemas import RunCreate
from harmrank.gateway.settings import GatewaySettings

PROMPTS = "id,text,category\np1,How do plants grow?,science\np2,Name a calm colour.,art\n"


async def gateway(serve_app: ServeApp, db_url: str, generator: str, judge: str) -> str:
    settings = GatewaySettings(
        database_url=SecretStr(db_url), generator_url=generator, judge_url=judge
    )
    url = serve_app(create_gateway(settings))
    async with httpx.AsyncClient(base_url=url) as client:
        files = {"file": ("p.csv", PROMPTS.encode(), "text/csv")}
        created = await client.post("/v1/datasets", files=files, data={"name": "toy"})
        assert created.status_code == 201, created.text
    return url


@pytest.fixture
async def api(
    serve_app: ServeApp, db_url: str, migrated_engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    url = await gateway(serve_app, db_url, *downstreams(serve_app))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield client


def run(**changes: Any) -> dict[str, Any]:
    body = {
        "prompts": {"dataset": "toy"},
        "models": [{"name": "small-a"}, {"name": "small-b"}],
        "judges": [{"name": "judge-x"}],
    }
    return body | changes


async def test_a_run_of_known_names_is_created(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/v1/runs", json=run(prompts={"dataset": "toy", "categories": ["art"]})
    )
    assert created.status_code == 201, created.text


async def test_every_unknown_name_is_named_at_once_with_the_known_ones(
    api: httpx.AsyncClient,
) -> None:
    body = run(
        prompts={"dataset": "toys"},
        models=[{"name": "small-a"}, {"name": "no-such-model"}, {"name": "small-z"}],
        judges=[{"name": "judge-x"}, {"name": "gpt4o"}],
    )
    refused = await api.post("/v1/runs", json=body)
    assert refused.status_code == 422
    answer = refused.json()
    assert answer["error_type"] == "validation"
    assert answer["details"] == [
        {"field": "prompts.dataset", "unknown": ["toys"], "known": ["toy"]},
        {"field": "models", "unknown": ["no-such-model", "small-z"],
         "known": ["small-a", "small-b"]},
        {"field": "judges", "unknown": ["gpt4o"], "known": ["judge-x", "judge-y"]},
    ]  # fmt: skip
    for name in ("'toys'", "'no-such-model'", "'small-z'", "'gpt4o'", "'judge-x'"):
        assert name in answer["error"]
    assert (await api.get("/v1/runs")).json()["items"] == []  # nothing was planned


async def test_a_run_planned_before_its_unknown_model_and_judge_were_found_leaves_nothing(
    api: httpx.AsyncClient, migrated_engine: AsyncEngine
) -> None:
    """The dataset is known, so the run is planned (its unknown model written as a new model
    row) while the services are asked; their answer refuses it and nothing stays."""
    body = run(models=[{"name": "small-a"}, {"name": "small-z"}], judges=[{"name": "gpt4o"}])
    refused = await api.post("/v1/runs", json=body)
    assert refused.status_code == 422, refused.text
    assert [d["field"] for d in refused.json()["details"]] == ["models", "judges"]
    assert (await api.get("/v1/runs")).json()["items"] == []
    async with AsyncSession(migrated_engine) as session:
        for table in (Run, Task, Model):
            assert await session.scalar(select(func.count()).select_from(table)) == 0
    assert (await api.post("/v1/runs", json=run())).status_code == 201


class _Answering(Services):
    """Services that know other names than the run's, and answer once the plan has begun."""

    async def names(self) -> tuple[list[str] | str, list[str] | str]:
        await asyncio.sleep(0.05)
        return ["small-a"], ["judge-x"]


async def test_planning_waits_for_the_services_answer_before_it_writes_any_task(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """The services are asked while the run begins to be planned; their answer refuses it
    before its tasks (nearly all of a big run's planning) are written."""
    await seed_dataset(session_maker, prompts=20)
    body = spec(models=[{"name": "small-a"}, {"name": "small-z"}])

    async def refused(_: AsyncSession) -> None:
        answering = _Answering("http://g", "http://j")
        with pytest.raises(InvalidInput, match="unknown models 'small-z'"):
            await service.create_run(session_maker, body, services=answering)

    sent = [s.split("(")[0].strip() for s, _ in await sent_statements(session_maker, refused)]
    assert "INSERT INTO runs" in sent  # the plan had begun
    assert "INSERT INTO tasks" not in sent


async def test_an_unknown_category_is_named_with_the_datasets_categories(
    api: httpx.AsyncClient,
) -> None:
    prompts = {"dataset": "toy", "categories": ["art", "maths"]}
    refused = await api.post("/v1/runs", json=run(prompts=prompts))
    assert refused.status_code == 422
    assert refused.json()["details"] == [
        {"field": "prompts.categories", "unknown": ["maths"], "known": ["art", "science"]}
    ]


@pytest.mark.parametrize("down", ["generator", "judge"])
async def test_an_unreachable_service_is_a_503_naming_it(
    serve_app: ServeApp, db_url: str, migrated_engine: AsyncEngine, down: str
) -> None:
    generator, judge = downstreams(serve_app)
    nowhere = f"http://127.0.0.1:{free_port()}"
    urls = (nowhere, judge) if down == "generator" else (generator, nowhere)
    url = await gateway(serve_app, db_url, *urls)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        refused = await client.post("/v1/runs", json=run())
        assert refused.status_code == 503
        answer = refused.json()
        assert answer["error_type"] == "upstream_unavailable"
        service = "generator" if down == "generator" else "judge service"
        assert f"the {service} at {nowhere}" in answer["error"]
        assert (await client.get("/v1/runs")).json()["items"] == []  # planned, rolled back
        # An unknown name is still named: what could be checked was.
        typo = await client.post("/v1/runs", json=run(prompts={"dataset": "typo"}))
        assert typo.status_code == 422
        assert "'typo'" in typo.json()["error"]
        assert "not checked" in typo.json()["error"]


class _Asked(Services):
    """Services that answer only when cancelled: the check must not leave them running."""

    cancelled = False

    async def names(self) -> tuple[list[str] | str, list[str] | str]:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return [], []


async def _never_planned(_checked: Checkpoint) -> None:
    raise AssertionError("planned although the database could not be asked")


async def test_a_database_error_while_the_services_are_asked_is_raised_as_itself() -> None:
    """The services are asked while the database is; the database's error comes out as it
    is (the gateway answers it 503, not a 500 for an exception group) and the question to the
    services is cancelled."""
    nowhere = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    services = _Asked("http://generator", "http://judge")
    try:
        async with AsyncSession(nowhere) as session:
            with pytest.raises((OSError, DBAPIError)) as raised:
                await plan_checked(
                    session, RunCreate.model_validate(run()), services, _never_planned
                )
    finally:
        await nowhere.dispose()
    assert not isinstance(raised.value, BaseExceptionGroup)
    assert services.cancelled
