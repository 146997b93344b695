"""Importing human rankings over real HTTP, on SQLite and PostgreSQL: all or nothing, once."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.gateway.db import Annotator, AnnotatorKind, Model, Prompt, Ranking, Response
from harmrank.gateway.rankings_import import service

Sessions = async_sessionmaker[AsyncSession]
MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
HEADER = ("Prompt", "Model 1 - Mistral-7B", "Model 2 - MPT-7B", "Model 3 - StableLM", "Ranking")
PROMPT_IDS = ("p1", "p2", "p3")
PROMPTS = [
    {"text": "First calm ask", "id": "p1"},
    {"text": "second  calm ask", "id": "p2"},
    {"text": "third calm ask", "id": "p3"},
]


def study_csv(*rows: tuple[str, str]) -> bytes:
    """Rows of (prompt, ranking) with the responses the dataset has stored."""
    out = io.StringIO()
    body = [(p, *(f"{m} says calm" for m in MODELS), r) for p, r in rows]
    csv.writer(out, lineterminator="\r\n").writerows([HEADER, *body])
    return out.getvalue().encode()


def jsonl(*objects: object) -> bytes:
    return "\n".join(json.dumps(o) for o in objects).encode()


async def post(
    client: httpx.AsyncClient,
    data: bytes,
    filename: str,
    dataset: str = "calm",
    annotator: str | None = None,
    **params: Any,
) -> httpx.Response:
    return await client.post(
        f"/v1/datasets/{dataset}/rankings",
        files={"file": (filename, data, "application/octet-stream")},
        data={"annotator": annotator} if annotator else {},
        params=params,
    )


@pytest.fixture
async def dataset(client: httpx.AsyncClient, session_maker: Sessions) -> str:
    """Three uploaded prompts with a response of each study model, and a judge annotator."""
    uploaded = await client.post(
        "/v1/datasets",
        files={"file": ("p.jsonl", jsonl(*PROMPTS), "application/x-ndjson")},
        data={"name": "calm"},
    )
    assert uploaded.status_code == 201, uploaded.text
    async with session_maker() as session:
        models = [Model(name=m, display_name=m, position=i) for i, m in enumerate(MODELS)]
        session.add_all([*models, Annotator(name="gpt4o", kind=AnnotatorKind.JUDGE)])
        await session.flush()
        for prompt_id in await session.scalars(select(Prompt.id)):
            session.add_all(
                Response(
                    prompt_id=prompt_id,
                    model_id=m.id,
                    text=f"{m.name} says calm",
                    generation_key="g",
                    source="seed",
                )
                for m in models
            )
        await session.commit()
    return "calm"


async def stored(sessions: Sessions) -> list[tuple[str, str, list[int], str, str]]:
    async with sessions() as session:
        found = await session.execute(
            select(
                Annotator.name, Prompt.external_id, Ranking.ranks, Ranking.raw_value, Ranking.source
            )
            .join(Ranking.annotator)
            .join(Ranking.prompt)
            .order_by(Ranking.id)
        )
        return [(a, p, list(r), raw, s) for a, p, r, raw, s in found.all()]


async def counts(sessions: Sessions) -> tuple[int, int]:
    async with sessions() as session:
        rankings = await session.scalar(select(func.count()).select_from(Ranking))
        annotators = await session.scalar(select(func.count()).select_from(Annotator))
    return rankings or 0, annotators or 0


async def test_a_study_csv_is_imported_with_its_quirks_normalised(
    client: httpx.AsyncClient, dataset: str, session_maker: Sessions
) -> None:
    data = study_csv(("first calm ask", "3,2,1"), ("SECOND calm ask", "N/A,3,N/A"))
    answer = await post(client, data, "output_Group_4.csv", annotator="group_4")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "dataset": "calm",
        "inserted": 2,
        "unchanged": 0,
        "replaced": 0,
        "annotators_created": ["group_4"],
        "warnings": [],
        "warnings_total": 0,
    }
    assert await stored(session_maker) == [
        ("group_4", "p1", [3, 2, 1], "3,2,1", "output_Group_4.csv:2"),
        ("group_4", "p2", [0, 1, 0], "N/A,3,N/A", "output_Group_4.csv:3"),
    ]
    listed = (await client.get("/v1/datasets/calm/rankings", params={"prompt": "p2"})).json()
    assert listed["models"] == list(MODELS)
    (item,) = listed["items"]
    assert (item["ranking"], item["raw_value"], item["annotator_kind"]) == (
        "N/A,1,N/A",
        "N/A,3,N/A",
        "human",
    )
    assert item["normalisations"] == [
        {"kind": "restarted_ranks", "raw": "N/A,3,N/A", "normalised": "N/A,1,N/A"}
    ]
    summary = (await client.get("/v1/datasets/calm")).json()
    assert summary["rankings"] == {"group_4": 2}


async def test_jsonl_by_id_and_by_text(
    client: httpx.AsyncClient, dataset: str, session_maker: Sessions
) -> None:
    data = jsonl(
        {"annotator": "ann", "prompt_id": "p3", "ranks": [1, 0, 2]},
        {"annotator": "ann", "prompt": "  First CALM ask ", "ranking": "[1, 2, 3]"},
    )
    answer = await post(client, data, "r.jsonl")
    assert answer.status_code == 200, answer.text
    assert await stored(session_maker) == [
        ("ann", "p3", [1, 0, 2], "[1, 0, 2]", "r.jsonl:1"),
        ("ann", "p1", [1, 2, 3], "[1, 2, 3]", "r.jsonl:2"),
    ]


async def test_reimport_is_idempotent_a_change_conflicts_and_replace_replaces(
    client: httpx.AsyncClient, dataset: str, session_maker: Sessions
) -> None:
    first = jsonl(
        {"annotator": "ann", "prompt_id": "p1", "ranks": [1, 2, 3]},
        {"annotator": "ann", "prompt_id": "p2", "ranks": [0, 0, 1]},
    )
    assert (await post(client, first, "r.jsonl")).json()["inserted"] == 2
    again = (await post(client, first, "r.jsonl")).json()
    assert (again["inserted"], again["unchanged"], again["annotators_created"]) == (0, 2, [])
    assert await counts(session_maker) == (2, 2)

    changed = jsonl(
        {"annotator": "ann", "prompt_id": "p3", "ranks": [1, 0, 0]},  # new
        {"annotator": "ann", "prompt_id": "p2", "ranks": [0, 1, 0]},  # changed
    )
    conflict = await post(client, changed, "fix.jsonl")
    assert conflict.status_code == 409
    body = conflict.json()
    assert body["error_type"] == "ranking_conflict"
    assert "line(s) 2" in body["error"]
    assert [(d["file"], d["line"], d["field"]) for d in body["details"]] == [
        ("fix.jsonl", 2, "ranking")
    ]
    assert await counts(session_maker) == (2, 2)  # the new line was not stored either

    replaced = (await post(client, changed, "fix.jsonl", replace="true")).json()
    assert (replaced["inserted"], replaced["replaced"], replaced["unchanged"]) == (1, 1, 0)
    rows = await stored(session_maker)
    assert ("ann", "p2", [0, 1, 0], "[0, 1, 0]", "fix.jsonl:2") in rows
    assert len(rows) == 3

    # Several changed at once (one executemany): each stored ranking gets its own line's values.
    again = jsonl(
        {"annotator": "ann", "prompt_id": "p3", "ranks": [0, 0, 1]},
        {"annotator": "ann", "prompt_id": "p2", "ranks": [0, 1, 0]},  # as stored
        {"annotator": "ann", "prompt_id": "p1", "ranks": [3, 2, 1]},
    )
    replaced = (await post(client, again, "again.jsonl", replace="true")).json()
    assert (replaced["inserted"], replaced["replaced"], replaced["unchanged"]) == (0, 2, 1)
    assert await stored(session_maker) == [
        ("ann", "p1", [3, 2, 1], "[3, 2, 1]", "again.jsonl:3"),
        ("ann", "p2", [0, 1, 0], "[0, 1, 0]", "fix.jsonl:2"),
        ("ann", "p3", [0, 0, 1], "[0, 0, 1]", "again.jsonl:1"),
    ]


async def test_any_problem_stores_nothing_and_names_every_line(
    client: httpx.AsyncClient, dataset: str, session_maker: Sessions
) -> None:
    data = jsonl(
        {"annotator": "new person", "prompt_id": "p1", "ranks": [1, 2, 3]},  # fine alone
        {"annotator": "new person", "prompt_id": "nope", "ranks": [1, 2, 3]},
        {"annotator": "new person", "prompt": "unknown text", "ranks": [1, 2, 3]},
        {"annotator": "gpt4o", "prompt_id": "p2", "ranks": [1, 2, 3]},
        {"annotator": "new person", "prompt_id": "p1", "ranks": [3, 2, 1]},
        {"annotator": "new person", "prompt_id": "p3", "ranks": [1, 1, 0]},
    )
    answer = await post(client, data, "r.jsonl")
    assert answer.status_code == 422
    body = answer.json()
    assert body["error_type"] == "invalid_rankings"
    assert [(d["line"], d["field"]) for d in body["details"]] == [
        (2, "prompt_id"),
        (3, "prompt"),
        (4, "annotator"),
        (5, ""),
        (6, "ranks"),
    ]
    assert body["details"][2]["problem"] == "'gpt4o' is stored as a judge annotator"
    assert await counts(session_maker) == (0, 1)  # only the judge; "new person" not created


async def test_repeats_and_differing_responses_are_warnings(
    client: httpx.AsyncClient, dataset: str, session_maker: Sessions
) -> None:
    out = io.StringIO()
    csv.writer(out).writerows(
        [
            HEADER,
            ("first calm ask", *(f"{m} says calm" for m in MODELS), "1,2,3"),
            ("first calm ask", *(f"{m} says calm" for m in MODELS), "1,2,3"),
            (
                "third calm ask",
                "another text",
                "mpt-7b says calm",
                "stablelm-alpha-7b says calm",
                "1,2,3",
            ),
        ]
    )
    answer = await post(client, out.getvalue().encode(), "g.csv", annotator="g")
    assert answer.status_code == 200, answer.text
    assert [(w["line"], w["field"]) for w in answer.json()["warnings"]] == [
        (3, ""),
        (4, "Model 1 - Mistral-7B"),
    ]
    assert answer.json()["inserted"] == 2


async def test_a_dataset_without_responses_has_nothing_to_rank(client: httpx.AsyncClient) -> None:
    uploaded = await client.post(
        "/v1/datasets",
        files={"file": ("p.csv", b"text\nan ask\n", "text/csv")},
        data={"name": "bare"},
    )
    assert uploaded.status_code == 201
    answer = await post(
        client, study_csv(("an ask", "1,2,3")), "g.csv", dataset="bare", annotator="g"
    )
    assert answer.status_code == 422
    assert "no responses" in answer.json()["details"][0]["problem"]
    missing = await post(
        client, study_csv(("an ask", "1,2,3")), "g.csv", dataset="nope", annotator="g"
    )
    assert (missing.status_code, missing.json()["error_type"]) == (404, "not_found")


async def test_the_route_is_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/datasets/{name}/rankings"]["post"]
    assert operation["description"].startswith("Import human rankings")
    assert {"409", "422"} <= set(operation["responses"])


async def test_an_import_larger_than_a_step_is_checked_and_stored_across_steps(
    client: httpx.AsyncClient,
    dataset: str,
    session_maker: Sessions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Steps of two entries: a repeat, an unknown prompt and a conflict each a step apart from
    # the line they concern; the server runs in this process, so the patched size applies.
    monkeypatch.setattr(service, "CHUNK", 2)
    first = jsonl(
        *({"annotator": "ann", "prompt_id": p, "ranks": [1, 2, 3]} for p in ("p1", "p2", "p3")),
        {"annotator": "bob", "prompt": "third calm ask", "ranks": [3, 2, 1]},
        {"annotator": "ann", "prompt_id": "p1", "ranks": [1, 2, 3]},  # a repeat, 2 steps on
    )
    answer = await post(client, first, "r.jsonl")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["inserted"], body["annotators_created"]) == (4, ["ann", "bob"])
    (warning,) = body["warnings"]
    assert warning["line"] == 5
    assert warning["problem"].startswith("line 1 ranks the same prompt for the same annotator")
    assert [(a, p) for a, p, *_ in await stored(session_maker)] == [
        ("ann", "p1"),
        ("ann", "p2"),
        ("ann", "p3"),
        ("bob", "p3"),
    ]
    bad = jsonl(
        {"annotator": "ann", "prompt_id": "p1", "ranks": [1, 2, 3]},
        {"annotator": "ann", "prompt_id": "p2", "ranks": [1, 2, 3]},
        {"annotator": "ann", "prompt_id": "nope", "ranks": [1, 2, 3]},
        {"annotator": "ann", "prompt_id": "p2", "ranks": [3, 2, 1]},
    )
    problems = (await post(client, bad, "bad.jsonl")).json()["details"]
    assert [(d["line"], d["field"]) for d in problems] == [(3, "prompt_id"), (4, "")]
    changed = jsonl(
        {"annotator": "ann", "prompt_id": "p1", "ranks": [1, 2, 3]},
        {"annotator": "ann", "prompt_id": "p2", "ranks": [1, 2, 3]},
        {"annotator": "ann", "prompt_id": "p3", "ranks": [0, 0, 1]},
    )
    conflict = await post(client, changed, "c.jsonl")
    assert (conflict.status_code, [d["line"] for d in conflict.json()["details"]]) == (409, [3])
    assert await counts(session_maker) == (4, 3)  # ann, bob and the judge


async def test_a_conflict_lists_the_first_changed_lines_and_counts_the_rest(
    client: httpx.AsyncClient, dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "LISTED_PROBLEMS", 2)
    first = jsonl(*({"annotator": "ann", "prompt_id": p, "ranks": [1, 2, 3]} for p in PROMPT_IDS))
    assert (await post(client, first, "r.jsonl")).json()["inserted"] == 3
    changed = jsonl(*({"annotator": "ann", "prompt_id": p, "ranks": [3, 2, 1]} for p in PROMPT_IDS))
    conflict = await post(client, changed, "c.jsonl")
    assert conflict.status_code == 409
    body = conflict.json()
    assert [d["line"] for d in body["details"]] == [1, 2]
    assert (
        body["error"]
        == "c.jsonl: line(s) 1, 2 and 1 more change stored rankings; nothing was stored"
    )
