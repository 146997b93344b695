"""The annotation API over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from tests.gateway.annotation.conftest import (
    DATASET,
    MODELS,
    Sessions,
    SignIn,
    by_label,
    calm_items,
    invite,
    rank_next,
    seed_dataset,
)

from harmrank.gateway.db import Annotator, AnnotatorKind, Prompt, Ranking
from harmrank.gateway.db.annotation_models import AnnotationInvitation

ADMIN = f"/v1/datasets/{DATASET}/annotation"


async def set_k(client: httpx.AsyncClient, k: int) -> None:
    answer = await client.put(f"{ADMIN}/settings", json={"k": k})
    assert answer.status_code == 200, answer.text


async def progress(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get(f"{ADMIN}/progress")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def rank_all(client: httpx.AsyncClient, plan: dict[str, list[int]]) -> list[str]:
    """Rank every item waiting for the annotator with the plan's canonical ranks per prompt."""
    ranked: list[str] = []
    while True:
        item = (await client.get("/annotate/api/next")).json()
        if item["finished"]:
            return ranked
        body = {"ranks": by_label(item, plan[item["prompt_id"]]), "seconds": 2}
        done = await client.post(f"/annotate/api/items/{item['prompt_id']}/ranking", json=body)
        assert done.status_code == 200, done.text
        ranked.append(item["prompt_id"])


async def test_invitation_tokens_are_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await seed_dataset(client, session_maker, calm_items(2))
    tokens = await invite(client, 2)
    assert len(set(tokens)) == 2
    listed = (await client.get(f"{ADMIN}/invitations")).json()
    assert [set(i) for i in listed] == [
        {"id", "label", "annotator", "created_at", "signed_in_at", "revoked_at"}
    ] * 2
    async with session_maker() as session:
        stored = set(await session.scalars(select(AnnotationInvitation.token_sha256)))
    assert stored == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}


async def test_sign_in_sets_a_strict_cookie_and_the_warning_comes_first(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    await seed_dataset(client, session_maker, calm_items(2))
    [token] = await invite(client)
    assert (await client.get("/annotate/api/next")).status_code == 401
    bad = await client.post("/annotate/api/session", json={"name": "ann", "token": "nope"})
    assert bad.status_code == 403
    good = await client.post("/annotate/api/session", json={"name": "ann", "token": token})
    assert good.status_code == 200
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/annotate/api" in cookie
    assert token not in cookie
    assert good.json()["warning_accepted"] is False
    refused = await client.get("/annotate/api/next")
    assert refused.status_code == 403
    assert refused.json()["error_type"] == "warning_not_accepted"
    assert (await client.post("/annotate/api/warning")).json()["warning_accepted"] is True
    item = (await client.get("/annotate/api/next")).json()
    assert [r["label"] for r in item["responses"]] == ["A", "B", "C"]
    assert (await client.delete("/annotate/api/session")).status_code == 204
    assert (await client.get("/annotate/api/next")).status_code == 401


async def test_an_invitation_keeps_its_name_and_names_stay_unique(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    await seed_dataset(client, session_maker, calm_items(2))
    first, second = await invite(client, 2)
    await sign_in("ann", first)
    other = await client.post("/annotate/api/session", json={"name": "bob", "token": first})
    assert other.status_code == 403
    taken = await client.post("/annotate/api/session", json={"name": "gpt4o", "token": second})
    assert taken.status_code == 409
    twice = await client.post("/annotate/api/session", json={"name": "ann", "token": second})
    assert twice.status_code == 409


@pytest.mark.parametrize(("annotators", "k", "items"), [(3, 2, 7), (4, 3, 10), (2, 3, 5)])
async def test_assignment_gives_each_item_k_annotators_and_balances_loads(
    client: httpx.AsyncClient, session_maker: Sessions, annotators: int, k: int, items: int
) -> None:
    await seed_dataset(client, session_maker, calm_items(items))
    await set_k(client, k)
    await invite(client, annotators)
    seen = await progress(client)
    assert seen["effective_k"] == min(k, annotators)
    assert [i["annotators"] for i in seen["per_item"]] == [min(k, annotators)] * items
    loads = [a["assigned"] for a in seen["annotators"]]
    assert sum(loads) == items * min(k, annotators)
    assert max(loads) - min(loads) <= 1
    # A late invitation takes its share of what is still pending.
    await invite(client)
    later = await progress(client)
    loads = [a["assigned"] for a in later["annotators"]]
    assert max(loads) - min(loads) <= 1
    assert [i["annotators"] for i in later["per_item"]] == [min(k, annotators + 1)] * items


async def test_ties_gaps_and_unknown_labels_are_refused_by_the_server(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    await seed_dataset(client, session_maker, calm_items(1))
    [token] = await invite(client)
    ann = await sign_in("ann", token)
    item = (await ann.get("/annotate/api/next")).json()
    url = f"/annotate/api/items/{item['prompt_id']}/ranking"
    cases = {
        "ties are not allowed: rank 1 is given more than once": {"A": 1, "B": 1, "C": 0},
        "gaps are not allowed: the 2 harmful response(s) need ranks 1..2": {"A": 1, "B": 3, "C": 0},
        "give a rank (0 for not harmful) for each of A, B, C": {"A": 1, "B": 0},
    }
    for expected, ranks in cases.items():
        answer = await ann.post(url, json={"ranks": ranks, "seconds": 1})
        assert answer.status_code == 422
        assert answer.json()["error"] == expected
    async with session_maker() as session:
        assert list(await session.scalars(select(Ranking.id))) == []
    ok = await ann.post(url, json={"ranks": {"A": 2, "B": 1, "C": 0}, "seconds": 3.5})
    assert ok.json()["finished"] is True
    again = await ann.post(url, json={"ranks": {"A": 2, "B": 1, "C": 0}, "seconds": 1})
    assert again.status_code == 409


async def test_a_ranking_is_stored_in_canonical_order_with_its_presentation(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    await seed_dataset(client, session_maker, calm_items(1))
    [token] = await invite(client)
    ann = await sign_in("ann", token)
    item = await rank_next(ann, [2, 0, 1])
    async with session_maker() as session:
        [ranking] = await session.scalars(select(Ranking))
        annotator = await session.get(Annotator, ranking.annotator_id)
    assert annotator is not None
    assert (annotator.name, annotator.kind) == ("ann", AnnotatorKind.HUMAN)
    assert ranking.ranks == [2, 0, 1]
    assert ranking.raw_value == "2,N/A,1"
    assert ranking.presentation_key == ""
    assert ranking.presentation is not None
    shown = [next(m for m in MODELS if r["text"].startswith(m)) for r in item["responses"]]
    assert ranking.presentation["order"] == shown
    assert ranking.presentation["labels"] == ["A", "B", "C"]
    assert ranking.presentation["seconds"] == 1.5


async def test_a_returning_annotator_resumes_where_they_left_off(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    await seed_dataset(client, session_maker, calm_items(4))
    [token] = await invite(client)
    ann = await sign_in("ann", token)
    first = await rank_next(ann, [1, 2, 3])
    second = await rank_next(ann, [0, 0, 1])
    waiting = (await ann.get("/annotate/api/next")).json()
    back = await sign_in("ann", token, accept=False)
    state = (await back.get("/annotate/api/state")).json()
    assert state["warning_accepted"] is True
    assert state["progress"] == {"done": 2, "total": 4, "skipped": 0}
    resumed = (await back.get("/annotate/api/next")).json()
    assert resumed == waiting
    assert resumed["prompt_id"] not in {first["prompt_id"], second["prompt_id"]}


async def test_a_skipped_item_goes_to_another_annotator(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    await seed_dataset(client, session_maker, calm_items(4))
    one, two = await invite(client, 2)
    ann = await sign_in("ann", one)
    bob = await sign_in("bob", two)
    item = (await ann.get("/annotate/api/next")).json()
    skipped = await ann.post(
        f"/annotate/api/items/{item['prompt_id']}/skip", json={"note": "unreadable"}
    )
    assert skipped.json()["progress"]["skipped"] == 1
    seen = await progress(client)
    by_item = {i["prompt_id"]: i for i in seen["per_item"]}
    assert by_item[item["prompt_id"]]["annotators"] == 1
    assert by_item[item["prompt_id"]]["skipped"] == 1
    bob_items = await rank_all(bob, {f"p{i}": [1, 2, 3] for i in range(1, 5)})
    assert item["prompt_id"] in bob_items


async def two_annotators_rank(
    client: httpx.AsyncClient, sign_in: SignIn, plans: list[dict[str, Any]]
) -> None:
    await set_k(client, len(plans))
    tokens = await invite(client, len(plans))
    for n, (plan, token) in enumerate(zip(plans, tokens, strict=True)):
        ann = await sign_in(f"human{n}", token)
        assert sorted(await rank_all(ann, plan)) == sorted(plan)


PLANS = [
    {"p1": [1, 2, 3], "p2": [0, 0, 1], "p3": [2, 1, 0]},
    {"p1": [1, 2, 3], "p2": [0, 1, 0], "p3": [1, 2, 0]},
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_export_round_trips_through_the_rankings_import(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn, fmt: str
) -> None:
    items = calm_items(3)
    await seed_dataset(client, session_maker, items)
    await two_annotators_rank(client, sign_in, PLANS)
    exported = await client.get(f"{ADMIN}/export", params={"format": fmt})
    assert exported.status_code == 200
    if fmt == "csv":
        header = exported.text.splitlines()[0]
        models = ",".join(f"Model {i} - {m}" for i, m in enumerate(MODELS, start=1))
        assert header == f"Prompt,{models},Ranking,Annotator"
    same = await client.post(
        f"/v1/datasets/{DATASET}/rankings", files={"file": (f"x.{fmt}", exported.content)}
    )
    assert same.status_code == 200, same.text
    assert (same.json()["inserted"], same.json()["unchanged"]) == (0, 6)
    await seed_dataset(client, session_maker, items, name="copy")
    copied = await client.post(
        "/v1/datasets/copy/rankings", files={"file": (f"x.{fmt}", exported.content)}
    )
    assert copied.status_code == 200, copied.text
    assert copied.json()["inserted"] == 6
    read = (await client.get("/v1/datasets/copy/rankings", params={"limit": 100})).json()
    got = {(r["annotator"], r["prompt_id"]): r["ranks"] for r in read["items"]}
    expected = {(f"human{n}", p): r for n, plan in enumerate(PLANS) for p, r in plan.items()}
    assert got == expected


async def test_agreement_figures_match_hand_computation(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    import krippendorff

    await seed_dataset(client, session_maker, calm_items(3))
    await two_annotators_rank(client, sign_in, PLANS)
    judge = {"p1": [1, 2, 3], "p2": [0, 0, 1], "p3": [1, 2, 0]}
    async with session_maker() as session:
        judge_id = await session.scalar(select(Annotator.id).where(Annotator.name == "gpt4o"))
        prompts = dict((await session.execute(select(Prompt.external_id, Prompt.id))).all())
        session.add_all(
            Ranking(annotator_id=judge_id, prompt_id=prompts[p], ranks=r, raw_value="", source="t")
            for p, r in judge.items()
        )
        await session.commit()
    answer = await client.get(f"{ADMIN}/agreement", params={"p": 0.9, "resamples": 50})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["parameters"]["p"] == 0.9
    assert result["parameters"]["na_rule"] == "majority"
    assert result["humans"] == ["human0", "human1"]
    assert result["judges"] == ["gpt4o"]
    # p1 identical; p2 and p3 differ: one pair per item, so pooled exact = 1/3.
    assert result["pairwise_exact_pooled"]["value"] == pytest.approx(1 / 3)
    [pair] = result["pairwise"]
    exact = next(f for f in pair["figures"] if f["metric"] == "exact_match")
    assert exact["value"] == pytest.approx(1 / 3)
    data = np.array([[v for p in ("p1", "p2", "p3") for v in plan[p]] for plan in PLANS], float)
    expected_alpha = krippendorff.alpha(
        reliability_data=data, level_of_measurement="ordinal", value_domain=[0, 1, 2, 3]
    )
    assert result["krippendorff_alpha"]["value"] == pytest.approx(expected_alpha)
    # Aggregate (majority of 2 = both): p1 -> 1,2,3; p2 -> no model harmful to both -> all N/A;
    # p3 -> mistral and mpt both sum 3: a tie, reported and left out of the reference.
    aggregate = result["aggregate"]
    assert aggregate["n_ties"] == 1
    assert aggregate["ties"][0]["prompt_id"] == "p3"
    assert aggregate["ties"][0]["tied"] == [["mistral-7b", "mpt-7b"]]
    assert aggregate["groups"] == {"all_agreed": 1, "disagreed": 2, "single": 0}
    assert aggregate["note"] == "3 of 3 items have two or more human annotators"
    # The same reference, stated the same way, as the reports' (aggregate_humans.human_reference).
    assert "na_rule 'majority'" in result["parameters"]["human_reference"]
    [vs] = result["judges_vs_humans"]
    assert (vs["a"], vs["b"], vs["n_shared_prompts"]) == ("gpt4o", "humans (aggregate)", 2)
    overall = next(f for f in vs["figures"] if f["metric"] == "exact_match")
    assert overall["value"] == pytest.approx(0.5)  # p1 equal; p2: 0,0,1 against 0,0,0
    split = {
        c: next(f for f in figs if f["metric"] == "exact_match")["value"]
        for c, figs in vs["by_category"].items()
    }
    assert split == {"all_agreed": 1.0, "disagreed": 0.0}


async def test_the_page_is_served_with_a_strict_content_security_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/annotate/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # No inline script or style: every script has a src, no style attributes or elements.
    assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []
    assert " style=" not in page.text
    assert "<style" not in page.text
    for name in ("annotate.js", "annotate.css", "admin.js"):
        found = await client.get(f"/annotate/static/{name}")
        assert found.status_code == 200
        assert "unsafe-inline" not in found.headers["content-security-policy"]
    script = (await client.get("/annotate/static/annotate.js")).text
    assert re.findall(r"\.(innerHTML|outerHTML|insertAdjacentHTML)\b", script) == []
    assert (await client.get("/annotate/static/conftest.py")).status_code == 404
    assert (await client.get("/annotate/admin")).status_code == 200


async def test_loads_are_reported_per_annotator(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    await seed_dataset(client, session_maker, calm_items(3))
    [token] = await invite(client)
    ann = await sign_in("ann", token)
    await rank_next(ann, [1, 0, 0])
    seen = await progress(client)
    [row] = seen["annotators"]
    assert (row["annotator"], row["done"], row["pending"], row["median_seconds"]) == (
        "ann",
        1,
        2,
        1.5,
    )
    assert Counter(i["done"] for i in seen["per_item"]) == {1: 1, 0: 2}


async def test_text_the_database_cannot_hold_is_a_client_error(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    await seed_dataset(client, session_maker, calm_items(1))
    [token] = await invite(client)
    # JSON escapes, as a client may send them: a NUL, and a lone surrogate.
    for name in ("a\\u0000b", "\\ud800"):
        body = f'{{"name": "{name}", "token": "{token}"}}'.encode()
        answer = await client.post(
            "/annotate/api/session", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
    assert (await client.get("/v1/datasets/a%00b/annotation/progress")).status_code == 404
    ann = await sign_in("ann", token)
    skipped = await ann.post("/annotate/api/items/p%00/skip", json={})
    assert skipped.status_code == 404
