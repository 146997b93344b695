"""The dataset and results routes over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.gateway.db import Annotator, AnnotatorKind, Dataset, Model, Prompt, Ranking, Response

Sessions = async_sessionmaker[AsyncSession]
ODD_TEXT = (
    ' lead space\u202e\u2028\x0b\x1b[31m\ttab\r\ncrlf\rcr😀 ﷽ e\u0301 "quoted",comma\x7f '
    "=1+1 \\ backslash "
)
LONG_TEXT = "long " + "ä😀\n" * 13_000  # 39,005 characters, 117 KB of UTF-8


def jsonl(*objects: object) -> bytes:
    return "\n".join(json.dumps(o, ensure_ascii=False) for o in objects).encode()


async def upload(
    client: httpx.AsyncClient, name: str, data: bytes, filename: str = "p.jsonl"
) -> httpx.Response:
    files = {"file": (filename, data, "application/octet-stream")}
    return await client.post("/v1/datasets", files=files, data={"name": name})


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
    return await client.get(path, params=params)


async def seed_results(sessions: Sessions, dataset: str, annotators: int = 2) -> None:
    """Responses of two models to every prompt, and rankings by ``annotators`` people."""
    async with sessions() as session:
        dataset_id = await session.scalar(select(Dataset.id).where(Dataset.name == dataset))
        prompts = (
            await session.execute(
                select(Prompt.id, Prompt.text)
                .where(Prompt.dataset_id == dataset_id)
                .order_by(Prompt.id)
            )
        ).all()
        models = [Model(name=n, display_name=n.upper(), position=i) for i, n in enumerate("ab")]
        people = [Annotator(name=f"p{i}", kind=AnnotatorKind.HUMAN) for i in range(annotators)]
        session.add_all([*models, *people])
        await session.flush()
        for prompt_id, text in prompts:
            for model in models:
                session.add(
                    Response(
                        prompt_id=prompt_id,
                        model_id=model.id,
                        text=f"{model.name}: {text}",
                        generation_key="g",
                        source="seed",
                    )
                )
            for person in people:
                session.add(
                    Ranking(
                        annotator_id=person.id,
                        prompt_id=prompt_id,
                        ranks=[1, 0],
                        raw_value="1,N/A",
                        normalisations=[],
                        source="seed:1",
                    )
                )
        await session.commit()


async def row_counts(sessions: Sessions) -> tuple[int, ...]:
    counts: list[int] = []
    async with sessions() as session:
        for table in (Dataset, Prompt):
            counts.append((await session.scalar(select(func.count()).select_from(table))) or 0)
    return tuple(counts)


async def all_pages(
    client: httpx.AsyncClient, path: str, limit: int, **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await get(
            client, path, limit=limit, **params, **({"cursor": cursor} if cursor else {})
        )
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


async def test_upload_then_describe_and_list(client: httpx.AsyncClient) -> None:
    data = jsonl(
        {"text": "a calm ask", "category": "c1", "id": "p1"},
        {"text": "another", "category": "c1", "lang": "en"},
        {"text": "third"},
    )
    created = await upload(client, "calm", data)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["prompts"], body["responses"], body["source"]) == (
        "calm",
        3,
        0,
        "upload:p.jsonl",
    )
    assert body["categories"] == [
        {"category": "c1", "prompts": 2},
        {"category": None, "prompts": 1},
    ]
    assert body["warnings"] == [
        {"file": "p.jsonl", "line": 2, "field": "lang", "problem": "unknown field, ignored"}
    ]
    detail = (await get(client, "/v1/datasets/calm")).json()
    assert detail == {k: v for k, v in body.items() if k not in ("warnings", "warnings_total")}
    listed = (await get(client, "/v1/datasets")).json()
    assert [d["name"] for d in listed["items"]] == ["calm"]
    assert listed["items"][0]["prompts"] == 3


async def test_a_malformed_upload_stores_nothing(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    data = b'{"text": "fine"}\n{"text": ""}\n{"text": "a\\u0000b"}\nnot json\n'
    answer = await upload(client, "bad", data)
    assert answer.status_code == 422
    body = answer.json()
    assert body["error_type"] == "invalid_dataset"
    assert [(d["file"], d["line"], d["field"]) for d in body["details"]] == [
        ("p.jsonl", 2, "text"),
        ("p.jsonl", 3, "text"),
        ("p.jsonl", 4, ""),
    ]
    assert await row_counts(session_maker) == (0, 0)
    assert (await get(client, "/v1/datasets/bad")).status_code == 404


async def test_errors_have_the_common_shape(client: httpx.AsyncClient) -> None:
    assert (await upload(client, "one", jsonl({"text": "a"}))).status_code == 201
    taken = await upload(client, "one", jsonl({"text": "b"}))
    assert (taken.status_code, taken.json()["error_type"]) == (409, "dataset_exists")
    bad_name = await upload(client, "no spaces", jsonl({"text": "b"}))
    assert (bad_name.status_code, bad_name.json()["error_type"]) == (422, "validation")
    not_form = await client.post("/v1/datasets", json={"name": "x"})
    assert (not_form.status_code, not_form.json()["error_type"]) == (400, "invalid_form")
    missing = await get(client, "/v1/datasets/nope/responses")
    assert (missing.status_code, missing.json()["error_type"]) == (404, "not_found")
    cursor = await get(client, "/v1/datasets/one/responses", cursor="garbage!")
    assert (cursor.status_code, cursor.json()["error_type"]) == (422, "invalid_cursor")
    dataset_cursor = (await get(client, "/v1/datasets", limit=1)).json()["next_cursor"]
    assert dataset_cursor is None  # one dataset: no next page
    export = await get(client, "/v1/datasets/one/rankings/export", format="xml")
    assert (export.status_code, export.json()["error_type"]) == (422, "validation")
    gone = await get(client, "/v1/datasets/nope/rankings/export", format="csv")
    assert (gone.status_code, gone.json()["error_type"]) == (404, "not_found")


async def test_over_long_text_follows_the_app_limit(client: httpx.AsyncClient) -> None:
    answer = await upload(client, "long", jsonl({"text": "x" * 50_001}))
    assert answer.status_code == 422
    assert (
        answer.json()["details"][0]["problem"] == "text is 50001 characters, over the limit 50000"
    )


@pytest.mark.parametrize("filename", ["p.csv", "p.jsonl"])
async def test_text_round_trips_through_upload_get_and_export(
    client: httpx.AsyncClient, session_maker: Sessions, filename: str
) -> None:
    texts = [ODD_TEXT, LONG_TEXT, "plain"]
    if filename.endswith(".csv"):
        out = io.StringIO()
        csv.writer(out).writerows([("text",), *((t,) for t in texts)])
        data = out.getvalue().encode()
    else:
        data = jsonl(*({"text": t} for t in texts))
    assert (await upload(client, "odd", data, filename)).status_code == 201
    await seed_results(session_maker, "odd")
    async with session_maker() as session:
        stored = list(await session.scalars(select(Prompt.text).order_by(Prompt.id)))
    assert stored == texts
    items = await all_pages(client, "/v1/datasets/odd/responses", 100, model="a")
    assert [i["prompt"] for i in items] == texts
    assert [i["text"] for i in items] == [f"a: {t}" for t in texts]
    for fmt in ("csv", "jsonl"):
        rows = parse_export(
            await get(client, "/v1/datasets/odd/responses/export", format=fmt, model="a")
        )
        assert [r["prompt"] for r in rows] == texts


def parse_export(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    text = answer.content.decode("utf-8")
    if answer.headers["content-type"].startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(text, newline="")))
    return [json.loads(line) for line in text.split("\n") if line]


async def test_pages_visit_every_row_exactly_once(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    prompts = [{"text": f"calm ask {i}", "id": f"p{i}"} for i in range(23)]
    assert (await upload(client, "many", jsonl(*prompts))).status_code == 201
    await seed_results(session_maker, "many", annotators=2)
    responses = await all_pages(client, "/v1/datasets/many/responses", 7)
    assert len(responses) == 46
    assert len({r["id"] for r in responses}) == 46
    assert [r["id"] for r in responses] == sorted(r["id"] for r in responses)
    only_a = await all_pages(client, "/v1/datasets/many/responses", 5, model="a")
    assert {r["model"] for r in only_a} == {"a"}
    assert len(only_a) == 23
    one = await all_pages(client, "/v1/datasets/many/responses", 5, prompt="p3")
    assert [(r["prompt_id"], r["model"]) for r in one] == [("p3", "a"), ("p3", "b")]
    rankings = await all_pages(client, "/v1/datasets/many/rankings", 4, annotator="p1")
    assert len({r["id"] for r in rankings}) == len(rankings) == 23
    assert (rankings[0]["ranking"], rankings[0]["ranks"]) == ("1,N/A", [1, 0])
    assert await all_pages(client, "/v1/datasets/many/rankings", 4, model="zzz") == []


async def test_the_dataset_list_pages_too(client: httpx.AsyncClient) -> None:
    for i in range(5):
        assert (await upload(client, f"d{i}", jsonl({"text": "a"}))).status_code == 201
    names = [d["name"] for d in await all_pages(client, "/v1/datasets", 2)]
    assert names == [f"d{i}" for i in range(5)]


async def test_exports_parse_back_to_the_listed_rows(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    prompts = [{"text": f"{ODD_TEXT} {i}", "category": "c"} for i in range(12)]
    assert (await upload(client, "exp", jsonl(*prompts))).status_code == 201
    await seed_results(session_maker, "exp")
    for kind in ("responses", "rankings"):
        listed = await all_pages(client, f"/v1/datasets/exp/{kind}", 1000)
        as_jsonl = parse_export(
            await get(client, f"/v1/datasets/exp/{kind}/export", format="jsonl")
        )
        assert as_jsonl == listed
        as_csv = parse_export(await get(client, f"/v1/datasets/exp/{kind}/export", format="csv"))
        assert [_typed(row) for row in as_csv] == listed


def _typed(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row with the cells that are not text read back as JSON."""
    typed: dict[str, Any] = dict(row)
    for key in ("id", "ranks", "normalisations"):
        if key in typed:
            typed[key] = json.loads(typed[key])
    return typed


async def test_export_is_a_download_with_a_header_row(client: httpx.AsyncClient) -> None:
    assert (await upload(client, "empty", jsonl({"text": "a"}))).status_code == 201
    answer = await get(client, "/v1/datasets/empty/rankings/export", format="csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="empty-rankings.csv"'
    assert answer.text.splitlines() == [
        "id,annotator,annotator_kind,prompt_id,ranking,ranks,raw_value,normalisations,source,"
        "presentation_key,created_at"
    ]


async def test_routes_are_documented(client: httpx.AsyncClient) -> None:
    spec = (await get(client, "/openapi.json")).json()
    paths = spec["paths"]
    upload_op = paths["/v1/datasets"]["post"]
    assert upload_op["summary"] or upload_op["description"]
    assert "multipart/form-data" in upload_op["requestBody"]["content"]
    assert paths["/v1/datasets/{name}/rankings"]["get"]["description"].startswith("Page through")
    assert (
        "text/csv"
        in paths["/v1/datasets/{name}/responses/export"]["get"]["responses"]["200"]["content"]
    )
