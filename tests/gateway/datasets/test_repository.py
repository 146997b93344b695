"""The result queries a run will reuse: filters, a prompt-set restriction, batched iteration."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway import export
from harmrank.gateway.datasets import repository as repo
from harmrank.gateway.datasets.upload import parse_upload
from harmrank.gateway.db import Annotator, AnnotatorKind, Model, Prompt, Ranking, Response
from harmrank.gateway.listings import repository as listed
from harmrank.gateway.listings import resolve
from harmrank.gateway.listings.scope import ResultScope
from harmrank.gateway.results import repository as results


@pytest.fixture
async def dataset_id(session: AsyncSession) -> int:
    """Ten prompts, each answered by two models and ranked by one person."""
    data = "\n".join(json.dumps({"text": f"ask {i}", "id": f"p{i}"}) for i in range(10))
    parsed = parse_upload(data.encode(), "p.jsonl", "jsonl")
    row = await repo.insert_dataset(
        session, name="ten", source="t", source_sha256="0" * 64, report={}, prompts=parsed.records
    )
    models = [Model(name=n, display_name=n, position=i) for i, n in enumerate("ab")]
    person = Annotator(name="ann", kind=AnnotatorKind.HUMAN)
    session.add_all([*models, person])
    await session.flush()
    for prompt_id in await session.scalars(select(Prompt.id).order_by(Prompt.id)):
        session.add_all(
            Response(
                prompt_id=prompt_id, model_id=m.id, text=m.name, generation_key="g", source="s"
            )
            for m in models
        )
        session.add(
            Ranking(
                annotator_id=person.id,
                prompt_id=prompt_id,
                ranks=[2, 1],
                raw_value="2,1",
                normalisations=[],
                source="s",
            )
        )
    await session.commit()
    return row.id


async def prompt_rows(session: AsyncSession, *external: str) -> list[int]:
    found = await session.scalars(select(Prompt.id).where(Prompt.external_id.in_(external)))
    return list(found)


async def test_a_prompt_set_restricts_every_listing(session: AsyncSession, dataset_id: int) -> None:
    chosen = await prompt_rows(session, "p2", "p7")
    responses = await listed.list_responses(session, dataset_id, prompt_ids=chosen)
    assert sorted((r.prompt_id, r.model) for r in responses) == [
        ("p2", "a"),
        ("p2", "b"),
        ("p7", "a"),
        ("p7", "b"),
    ]
    rankings = await listed.list_rankings(session, dataset_id, prompt_ids=chosen, model="b")
    assert sorted(r.prompt_id for r in rankings) == ["p2", "p7"]
    # A subquery works as well as a list, so a run's prompt set need not be loaded.
    subquery = select(Prompt.id).where(Prompt.external_id == "p3")
    assert [
        r.prompt_id for r in await listed.list_rankings(session, dataset_id, prompt_ids=subquery)
    ] == ["p3"]


async def test_iteration_reads_in_batches_and_misses_nothing(
    session: AsyncSession, dataset_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listed, "EXPORT_BATCH", 3)
    responses = [r.id async for r in listed.iter_all(listed.list_responses, session, dataset_id)]
    assert len(responses) == len(set(responses)) == 20
    rankings = [
        r.prompt_id
        async for r in listed.iter_all(listed.list_rankings, session, dataset_id, annotator="ann")
    ]
    assert rankings == [f"p{i}" for i in range(10)]
    assert [
        r
        async for r in listed.iter_all(
            listed.list_rankings, session, dataset_id, annotator="nobody"
        )
    ] == []


async def rows_of(items: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield item


async def test_export_chunks_round_trip_across_chunk_boundaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export, "CHUNK_CHARS", 10)
    items = [
        {"id": i, "text": f'line\r\n{i} "q", é', "ranks": [i, 0], "gone": None} for i in range(7)
    ]
    columns = ("id", "text", "ranks", "gone")
    chunks = [c async for c in export.csv_chunks(columns, rows_of(items))]
    assert len(chunks) > 2
    back = list(csv.DictReader(io.StringIO("".join(chunks), newline="")))
    assert [r["text"] for r in back] == [i["text"] for i in items]
    assert [json.loads(r["ranks"]) for r in back] == [i["ranks"] for i in items]
    assert {r["gone"] for r in back} == {""}
    lines = "".join([c async for c in export.jsonl_chunks(rows_of(items))]).split("\n")
    assert [json.loads(line) for line in lines if line] == items


@pytest.mark.parametrize("name", ["nope", "a\x00b", "\ud800"])
async def test_every_lookup_by_name_answers_an_unknown_name_with_one_error(
    session: AsyncSession, dataset_id: int, name: str
) -> None:
    # Text the database cannot hold (a NUL, a lone surrogate) names no dataset either: the
    # lookup says so instead of sending a query PostgreSQL would refuse.
    assert await repo.dataset_id_by_name(session, "ten") == dataset_id
    assert (await repo.dataset_by_name(session, "ten")).id == dataset_id
    lookups = (
        repo.dataset_id_by_name,
        repo.dataset_by_name,
        repo.dataset_detail,
        results.load_rankings,
        results.dataset_summary,
        results.list_exclusions,
    )
    for lookup in lookups:
        with pytest.raises(repo.NoSuchDataset) as raised:
            await lookup(session, name)
        assert (raised.value.status_code, raised.value.message) == (
            404,
            f"no dataset named {name!r}",
        )


async def test_a_scope_names_itself_and_its_files(session: AsyncSession, dataset_id: int) -> None:
    scope = await resolve.dataset_scope(session, "ten")
    assert (scope.dataset_id, scope.run_id, scope.prompt_ids) == (dataset_id, None, None)
    assert (scope.label, scope.file_stem) == ("dataset ten", "ten")
    assert await resolve.scope_models(session, scope) == ["a", "b"]
    run = ResultScope(dataset_id=dataset_id, dataset="ten", run_id=7)
    assert (run.label, run.file_stem) == ("run 7 (dataset ten)", "run-7")
