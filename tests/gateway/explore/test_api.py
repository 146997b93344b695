"""The explorer's API over real HTTP, on SQLite and PostgreSQL: each filter on the hand-made
dataset of ``conftest.py`` returns the prompts worked out by hand, with counts and pages."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update
from tests.gateway.explore.conftest import Sessions, add_run, samples, seed

from harmrank.gateway.db import Annotator, Prompt, Ranking
from harmrank.gateway.pagination import encode_cursor


async def listed(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    found = await client.get("/v1/explore/prompts", params={"dataset": "hand", **params})
    assert found.status_code == 200, found.text
    return dict(found.json())


async def ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    return [i["prompt_id"] for i in (await listed(client, **params))["items"]]


HUMAN_VS_GPT = {"a": "h1", "b": "gpt4o #1"}
HARMFUL_RBO = {**HUMAN_VS_GPT, "agreement": "rbo_below", "lists": "harmful"}
CASES = [
    ({}, ["p1", "p2", "p3", "p4"]),
    ({"category": "hate"}, ["p1", "p3"]),
    ({"q": "search-ME"}, ["p3"]),
    ({**HUMAN_VS_GPT, "agreement": "exact"}, ["p1", "p2"]),
    ({**HUMAN_VS_GPT, "agreement": "differ"}, ["p3", "p4"]),
    ({**HUMAN_VS_GPT, "agreement": "harm_split"}, ["p3"]),
    # On m2 alone: p3 (1 vs N/A) and p4 (1 vs 3) differ; p2 has N/A from both.
    ({**HUMAN_VS_GPT, "agreement": "differ", "model": "m2"}, ["p3", "p4"]),
    ({**HUMAN_VS_GPT, "agreement": "exact", "model": "m1"}, ["p1", "p2", "p3", "p4"]),
    ({"a": "h2", "b": "claude", "agreement": "differ", "model": "m0"}, ["p2", "p4"]),
    # RBO_ext, p = 0.9, harmful lists: p4 is [m0 m1 m2] against [m2 m1 m0]: overlaps 0, 1/2, 1
    # at depths 1..3, so 0.1 * (0 + 0.9 * 0.5 + 0.81 * 1) + 0.9**3 * 1 = 0.855; p3's lists are
    # [m2] and [] (one list empty: 0 by convention); p1 and p2 are identical (1).
    ({**HARMFUL_RBO, "rbo_below": 0.86}, ["p3", "p4"]),
    ({**HARMFUL_RBO, "rbo_below": 0.85}, ["p3"]),
    # The bars of a rank histogram and of pairwise wins (lower rank wins, N/A = 0).
    ({"a": "h1", "model": "m0", "rank": 1}, ["p1", "p2"]),
    ({"a": "h1", "model": "m0", "rank": 0}, ["p3"]),
    ({"a": "h1", "model": "m2", "beats": "m0"}, ["p1", "p2", "p4"]),
    ({"a": "h1", "model": "m0", "beats": "m2"}, ["p3"]),
    # gpt4o's own column: the consensus of its two orders (p2: 1,2,0 and 2,1,0 give 1,2,0).
    ({"a": "h1", "b": "gpt4o", "agreement": "exact"}, ["p1", "p2"]),
    ({"split": "judges"}, ["p2", "p3", "p4"]),
    ({"split": "humans"}, ["p2"]),
    ({"position_effect": "true"}, ["p2"]),
    ({"position_effect": "true", "judge": "claude"}, []),
    ({"position_effect": "true", "judge": "gpt4o", "category": "violence"}, ["p2"]),
    # Shares of the 10 column pairs that differ: p4 8/10, p2 and p3 6/10 (sample order), p1 0.
    ({"sort": "disagreement"}, ["p4", "p2", "p3", "p1"]),
]  # fmt: skip


@pytest.mark.parametrize(("params", "expected"), CASES)
async def test_each_filter_returns_the_prompts_worked_out_by_hand(
    client: httpx.AsyncClient, session_maker: Sessions, params: dict[str, Any], expected: list[str]
) -> None:
    await seed(session_maker, samples())
    page = await listed(client, **params)
    assert [i["prompt_id"] for i in page["items"]] == expected
    assert (page["matched"], page["total"]) == (len(expected), 4)


async def test_the_listing_pages_states_its_filter_and_marks_disagreement(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await seed(session_maker, samples())
    first = await listed(client, limit=3, sort="disagreement")
    assert first["next_cursor"] is not None
    second = await listed(client, limit=3, sort="disagreement", cursor=first["next_cursor"])
    assert [i["prompt_id"] for i in second["items"]] == ["p1"]
    assert second["next_cursor"] is None
    assert (second["matched"], second["total"]) == (4, 4)
    assert [i["disagreement"] for i in first["items"]] == [0.8, 0.6, 0.6]
    names = [c["name"] for c in first["columns"]]
    assert names == ["h1", "h2", "claude", "gpt4o", "gpt4o #1", "gpt4o #2"]
    assert first["models"] == ["m0", "m1", "m2"]
    assert first["categories"] == ["hate", "violence"]
    assert first["items"][0]["ranks"]["gpt4o #2"] == [1, 2, 3]
    rbo = await listed(client, **HUMAN_VS_GPT, agreement="rbo_below", rbo_below=0.7)
    assert rbo["filter"] == {
        "a": "h1", "b": "gpt4o #1", "agreement": "rbo_below", "rbo_below": 0.7, "p": 0.9,
        "lists": "tied", "sort": "order",
        "rbo": "RBO_ext (Webber et al. 2010), ties w (Corsi & Urbano 2024)",
    }  # fmt: skip


async def every_page(client: httpx.AsyncClient, **params: Any) -> list[str]:
    shown: list[str] = []
    page = await listed(client, limit=1, **params)
    while True:
        shown += [i["prompt_id"] for i in page["items"]]
        if page["next_cursor"] is None:
            return shown
        page = await listed(client, limit=1, cursor=page["next_cursor"], **params)


@pytest.mark.parametrize("sort", ["order", "disagreement"])
async def test_paging_a_row_at_a_time_walks_the_whole_listing_in_its_order(
    client: httpx.AsyncClient, session_maker: Sessions, sort: str
) -> None:
    await seed(session_maker, samples())
    whole = await ids(client, sort=sort)
    assert len(whole) == 4
    assert await every_page(client, sort=sort) == whole


async def test_a_cursor_resumes_after_the_last_prompt_shown_when_the_listing_changes(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    """Keyset, not offset: a prompt shown earlier leaving the filter skips nothing after it."""
    await seed(session_maker, samples())
    first = await listed(client, limit=1, split="judges")
    assert [i["prompt_id"] for i in first["items"]] == ["p2"]
    async with session_maker() as session:
        p2 = select(Prompt.id).where(Prompt.external_id == "p2").scalar_subquery()
        await session.execute(delete(Ranking).where(Ranking.prompt_id == p2))
        await session.commit()
    second = await listed(client, limit=1, split="judges", cursor=first["next_cursor"])
    assert [i["prompt_id"] for i in second["items"]] == ["p3"]  # an offset of 1 gave p4
    assert second["matched"] == 2


async def test_one_prompt_in_full_marks_who_disagrees(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await seed(session_maker, samples())
    found = await client.get("/v1/explore/prompts/p2", params={"dataset": "hand"})
    assert found.status_code == 200, found.text
    item = found.json()
    assert item["prompt"] == "Bravo question"
    assert [(r["model"], r["text"]) for r in item["responses"]] == [
        ("m0", "b0"), ("m1", "b1"), ("m2", "b2")
    ]  # fmt: skip
    by_column = {r["column"]: r for r in item["rankings"]}
    assert set(by_column) == {"h1", "h2", "gpt4o #1", "gpt4o #2", "claude"}
    # Three columns say 1,2,0 and two say 2,1,0: the two differ on m0 and m1.
    assert by_column["h2"]["disagrees_on"] == ["m0", "m1"]
    assert by_column["gpt4o #2"]["disagrees_on"] == ["m0", "m1"]
    assert by_column["h1"]["disagrees_on"] == []
    assert by_column["gpt4o #2"]["raw_value"] == "2,1,0"
    assert item["missing"] == []


async def test_a_run_shows_its_prompts_its_judges_the_humans_it_included_and_why_one_is_missing(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    prompts = await seed(session_maker, samples())
    run = await add_run(session_maker, "hand", [prompts["p2"], prompts["p1"]])
    found = await client.get("/v1/explore/prompts", params={"run": run})
    page = found.json()
    assert [i["prompt_id"] for i in page["items"]] == ["p2", "p1"]
    assert [c["name"] for c in page["columns"]] == ["h1", "claude", "gpt4o", "gpt4o #1", "gpt4o #2"]
    assert page["scope"] == f"run {run} (dataset hand)"
    assert (await client.get("/v1/explore/prompts/p3", params={"run": run})).status_code == 404
    item = (await client.get("/v1/explore/prompts/p2", params={"run": run})).json()
    assert [m["judge"] for m in item["missing"]] == ["llama"]
    assert item["missing"][0]["message"] == "refused: the model declined"
    assert item["responses"][0]["generation"]["server"] == {"model_id": "org/m0"}


BAD = [
    ({}, 400, "exactly one of `dataset`"),
    ({"dataset": "hand", "run": 1}, 400, "exactly one of `dataset`"),
    ({"dataset": "nope"}, 404, "nope"),
    ({"run": 999}, 404, "999"),
    ({"dataset": "hand", "a": "h9", "b": "h1", "agreement": "exact"}, 400, "a: no annotator"),
    ({"dataset": "hand", "model": "m9"}, 400, "model: no model 'm9'"),
    ({"dataset": "hand", "agreement": "exact", "a": "h1"}, 400, "needs both"),
    ({"dataset": "hand", "judge": "h1", "position_effect": "true"}, 400, "judge: no judge"),
    ({"dataset": "hand", "agreement": "maybe"}, 422, "agreement"),
    ({"dataset": "hand", "a": "h1", "rank": 1}, 400, "need the annotator column `a` and the"),
    ({"dataset": "hand", "a": "h1", "model": "m0", "beats": "m7"}, 400, "beats: no model"),
    ({"dataset": "hand", "rbo_below": 2}, 422, "rbo_below"),
    ({"dataset": "hand", "limit": 0}, 422, "limit"),
    ({"dataset": "hand", "q": "x" * 501}, 422, "q"),
    ({"dataset": "hand", "cursor": "garbage!"}, 422, "invalid_cursor"),
    # The sample order's cursor given to the disagreement order: refused, not misread.
    ({"dataset": "hand", "sort": "disagreement", "cursor": encode_cursor("eo", 1, 1)}, 422,
     "query.cursor"),
    ({"dataset": "hand", "cursor": encode_cursor("eo", 1)}, 422, "invalid_cursor"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "status", "says"), BAD)
async def test_bad_input_is_a_clear_error_never_a_500(
    client: httpx.AsyncClient,
    session_maker: Sessions,
    params: dict[str, Any],
    status: int,
    says: str,
) -> None:
    await seed(session_maker, samples())
    found = await client.get("/v1/explore/prompts", params=params)
    assert found.status_code == status, found.text
    assert says in found.text


async def test_the_export_is_the_current_filter_and_its_csv_is_safe_in_a_spreadsheet(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await seed(session_maker, samples())
    params = {"dataset": "hand", "category": "hate"}
    as_csv = await client.get("/v1/explore/export", params={**params, "format": "csv"})
    assert as_csv.status_code == 200, as_csv.text
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["prompt_id"] for r in rows] == ["p1", "p3"]
    assert rows[1]["response:m0"] == "'=HYPERLINK(1)"
    assert json.loads(rows[1]["ranks:gpt4o #2"]) == [0, 0, 0]
    as_jsonl = await client.get("/v1/explore/export", params={**params, "format": "jsonl"})
    lines = [json.loads(line) for line in as_jsonl.text.splitlines()]
    assert lines[1]["response:m0"] == "=HYPERLINK(1)"
    assert lines[1]["ranks:h1"] == [0, 0, 1]
    assert len(lines) == 2
    raw = await client.get("/v1/explore/export", params={**params, "format": "csv", "raw": True})
    assert list(csv.DictReader(io.StringIO(raw.text)))[1]["response:m0"] == "=HYPERLINK(1)"


async def test_the_page_has_the_annotation_pages_strict_policy_and_no_outside_resource(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/explore/")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for name in ("explore.js", "explore.css"):
        body = (await client.get(f"/explore/static/{name}")).text
        assert "http://" not in body
        assert "https://" not in body
        for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write"):
            assert sink not in body
    assert "http" not in page.text.replace('charset="utf-8"', "")
    assert (await client.get("/explore/static/nope.js")).status_code == 404


async def test_a_ranking_changed_in_place_or_added_shows_at_once(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    """The listing's facts are cached per scope; any change to its rankings rebuilds them."""
    await seed(session_maker, samples())
    assert await ids(client, split="humans") == ["p2"]
    async with session_maker() as session:
        # h2 on p1 becomes 2,1,0 in place (as a re-import replaces a ranking): humans split.
        h2 = select(Annotator.id).where(Annotator.name == "h2").scalar_subquery()
        p1 = select(Prompt.id).where(Prompt.external_id == "p1").scalar_subquery()
        await session.execute(
            update(Ranking)
            .where(Ranking.annotator_id == h2, Ranking.prompt_id == p1)
            .values(ranks=[2, 1, 0])
        )
        await session.commit()
    assert await ids(client, split="humans") == ["p1", "p2"]
    async with session_maker() as session:
        await session.execute(delete(Ranking).where(Ranking.prompt_id == p1))
        await session.commit()
    assert await ids(client, split="humans") == ["p2"]
