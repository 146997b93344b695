"""A run's responses and rankings over real HTTP, on both backends: exactly the run's rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import ServeApp
from tests.gateway.run_results.helpers import (
    STUDY_MODELS,
    finished_run,
    gateway_app,
    seed_study_like,
)
from tests.gateway.runs.helpers import Sessions, create, seed_dataset, spec

from harmrank.gateway.db.run_models import Stage, Task
from harmrank.gateway.export import csv_cell


@pytest.fixture
async def api(
    db_url: str, migrated_engine: AsyncEngine, session_maker: Sessions, serve_app: ServeApp
) -> AsyncIterator[httpx.AsyncClient]:
    await seed_dataset(session_maker)
    async with httpx.AsyncClient(base_url=serve_app(gateway_app(db_url)), timeout=60) as client:
        yield client


async def all_pages(api: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item, page by page; fails if a row is visited twice."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        answer = await api.get(path, params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)
    return items


async def task_keys(sessions: Sessions, run_id: int, stage: Stage) -> set[tuple[Any, ...]]:
    async with sessions() as session:
        found = await session.execute(
            select(Task.prompt_id, Task.model_id, Task.generation_key, Task.presentation_key).where(
                Task.run_id == run_id, Task.stage == stage
            )
        )
        return {tuple(row) for row in found}


def as_csv_rows(items: list[dict[str, Any]], columns: list[str]) -> list[list[str]]:
    return [[csv_cell(item[c]) for c in columns] for item in items]


async def test_a_run_lists_exactly_its_own_rows(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    mine = await finished_run(session_maker)
    # Same dataset and judge; one other model, and small-a with other generation settings.
    other = await finished_run(
        session_maker,
        models=[{"name": "small-a", "params": {"max_new_tokens": 9}}, {"name": "small-c"}],
    )
    responses = await all_pages(api, f"/v1/runs/{mine.id}/responses", limit=5)
    assert len(responses) == 12  # 6 prompts x 2 models
    assert {r["model"] for r in responses} == {"small-a", "small-b"}
    assert len({(r["prompt_id"], r["model"]) for r in responses}) == 12
    theirs = await all_pages(api, f"/v1/runs/{other.id}/responses", limit=7)
    assert len(theirs) == 12
    assert not {r["id"] for r in theirs} & {r["id"] for r in responses}
    dataset = await all_pages(api, "/v1/datasets/toy/responses", limit=1000)
    assert len(dataset) == 24

    rankings = await all_pages(api, f"/v1/runs/{mine.id}/rankings", limit=5)
    assert len(rankings) == 12  # 6 prompts x 2 presentation orders of one judge
    keys = {k[3] for k in await task_keys(session_maker, mine.id, Stage.JUDGE)}
    assert {r["presentation_key"] for r in rankings} == keys
    theirs_k = await all_pages(api, f"/v1/runs/{other.id}/rankings")
    assert not {r["id"] for r in theirs_k} & {r["id"] for r in rankings}
    page = (await api.get(f"/v1/runs/{other.id}/rankings", params={"limit": 1})).json()
    assert page["models"] == ["small-a", "small-c"]


async def test_filters_and_errors(api: httpx.AsyncClient, session_maker: Sessions) -> None:
    run = await finished_run(session_maker)
    base = f"/v1/runs/{run.id}"
    one = await all_pages(api, f"{base}/responses", model="small-b", prompt="p3")
    assert [(r["model"], r["prompt_id"]) for r in one] == [("small-b", "p3")]
    assert await all_pages(api, f"{base}/responses", model="small-z") == []
    judged = await all_pages(api, f"{base}/rankings", annotator="judge-x", prompt="p1")
    assert len(judged) == 2
    assert await all_pages(api, f"{base}/rankings", annotator="nobody") == []

    missing = await api.get("/v1/runs/9999/responses")
    assert (missing.status_code, missing.json()["error_type"]) == (404, "not_found")
    export_missing = await api.get("/v1/runs/9999/rankings/export", params={"format": "csv"})
    assert export_missing.status_code == 404
    bad = await api.get(f"{base}/rankings", params={"cursor": "nonsense"})
    assert (bad.status_code, bad.json()["error_type"]) == (422, "invalid_cursor")
    fmt = await api.get(f"{base}/responses/export", params={"format": "xml"})
    assert (fmt.status_code, fmt.json()["error_type"]) == (422, "validation")


@pytest.mark.parametrize("what", ["responses", "rankings"])
async def test_exports_parse_back_to_the_page_rows(
    api: httpx.AsyncClient, session_maker: Sessions, what: str
) -> None:
    run = await finished_run(session_maker)
    await finished_run(session_maker, models=[{"name": "small-c"}, {"name": "small-d"}])
    items = await all_pages(api, f"/v1/runs/{run.id}/{what}", limit=1000)

    jsonl = await api.get(f"/v1/runs/{run.id}/{what}/export", params={"format": "jsonl"})
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in jsonl.text.splitlines()] == items

    exported = await api.get(f"/v1/runs/{run.id}/{what}/export", params={"format": "csv"})
    assert f'filename="run-{run.id}-{what}.csv"' in exported.headers["content-disposition"]
    header, *rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows == as_csv_rows(items, header)


async def test_a_run_before_its_work_has_no_rows(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    run = await create(session_maker, spec())
    assert await all_pages(api, f"/v1/runs/{run.id}/responses") == []
    assert await all_pages(api, f"/v1/runs/{run.id}/rankings") == []


async def test_humans_join_when_the_report_included_them(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await seed_study_like(session_maker)
    models = [{"name": m, "source": "imported"} for m in STUDY_MODELS]
    sample = {"dataset": "studylike", "sample_size": 5, "seed": 3}
    run = await finished_run(session_maker, prompts=sample, models=models)
    report = (await api.get(f"/v1/runs/{run.id}/report")).json()
    included = report["run"]["humans"]["included"]
    assert included  # the run judged the dataset's imported responses

    responses = await all_pages(api, f"/v1/runs/{run.id}/responses")
    run_prompts = {r["prompt_id"] for r in responses}
    assert len(run_prompts) == 5
    assert len(responses) == 15
    rankings = await all_pages(api, f"/v1/runs/{run.id}/rankings")
    humans = [r for r in rankings if r["annotator_kind"] == "human"]
    assert {r["prompt_id"] for r in humans} <= run_prompts
    everyone = await all_pages(api, "/v1/datasets/studylike/rankings", annotator="group-1")
    expected = [r for r in everyone if r["prompt_id"] in run_prompts]
    assert [r for r in humans if r["annotator"] == "group-1"] == expected
    assert {r["annotator"] for r in humans} == set(included)
    assert len(rankings) - len(humans) == 10  # 5 prompts x 2 orders of judge-x
