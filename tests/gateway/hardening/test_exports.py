"""CSV exports neutralise spreadsheet formulas (OWASP); ``raw=true`` and JSONL keep the text."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from tests.gateway.datasets.test_api import jsonl, parse_export, seed_results, upload
from tests.gateway.run_results.helpers import finished_run
from tests.gateway.runs.helpers import Sessions

from harmrank.gateway.db.models import Prompt, Response
from harmrank.gateway.export import FORMULA_STARTS, csv_chunks, neutralise

FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "plain"]


def neutralised(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def rows(*items: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield item


async def test_a_csv_cell_that_a_spreadsheet_would_run_gets_a_quote() -> None:
    chunks = [
        c async for c in csv_chunks(["text", "n"], rows(*({"text": t, "n": -1} for t in FORMULAS)))
    ]
    read = list(csv.DictReader(io.StringIO("".join(chunks), newline="")))
    assert [r["text"] for r in read] == [neutralised(t) for t in FORMULAS]
    assert {r["n"] for r in read} == {"-1"}  # a number is a number, not a formula
    raw = [c async for c in csv_chunks(["text"], rows(*({"text": t} for t in FORMULAS)), True)]
    assert [r["text"] for r in csv.DictReader(io.StringIO("".join(raw), newline=""))] == FORMULAS


@given(st.text())
def test_neutralised_text_never_starts_a_formula_and_keeps_the_rest(text: str) -> None:
    out = neutralise(text)
    assert not out.startswith(FORMULA_STARTS)
    assert out.removeprefix("'") == text or out == text


async def test_dataset_exports_neutralise_in_csv_and_keep_text_in_raw_and_jsonl(
    api: httpx.AsyncClient, seeded: Sessions
) -> None:
    uploaded = await upload(api, "formulas", jsonl(*({"text": t} for t in FORMULAS)))
    assert uploaded.status_code == 201, uploaded.text
    await seed_results(seeded, "formulas")
    path = "/v1/datasets/formulas/responses/export"
    params = {"model": "a"}
    safe = parse_export(await api.get(path, params=params | {"format": "csv"}))
    assert sorted(r["prompt"] for r in safe) == sorted(neutralised(t) for t in FORMULAS)
    for exact in ({"format": "csv", "raw": "true"}, {"format": "jsonl"}):
        found = parse_export(await api.get(path, params=params | exact))
        assert sorted(r["prompt"] for r in found) == sorted(FORMULAS)


async def test_run_exports_neutralise_in_csv(api: httpx.AsyncClient, seeded: Sessions) -> None:
    run = await finished_run(seeded)
    async with seeded.begin() as session:
        await session.execute(update(Prompt).values(text="=1+1"))
        await session.execute(update(Response).values(text="@cmd"))
    path = f"/v1/runs/{run.id}/responses/export"
    safe = parse_export(await api.get(path, params={"format": "csv"}))
    assert safe
    assert {(r["prompt"], r["text"]) for r in safe} == {("'=1+1", "'@cmd")}
    raw = parse_export(await api.get(path, params={"format": "csv", "raw": "true"}))
    assert {(r["prompt"], r["text"]) for r in raw} == {("=1+1", "@cmd")}


async def test_the_annotation_export_takes_raw(api: httpx.AsyncClient) -> None:
    for raw in ("false", "true"):
        answer = await api.get(
            "/v1/datasets/toy/annotation/export", params={"format": "csv", "raw": raw}
        )
        assert answer.status_code == 200, answer.text
