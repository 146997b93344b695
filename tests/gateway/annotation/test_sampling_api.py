"""A label budget and the active policy, end to end over real HTTP on SQLite and PostgreSQL:
settings → draws → assignments (π stored) → rankings on the page → the dataset report's PPI
estimates weighted by 1/π and naming the policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp
from tests.gateway.annotation.conftest import (
    DATASET,
    MODELS,
    Sessions,
    SignIn,
    calm_items,
    invite,
    make_app,
    seed_dataset,
)
from tests.gateway.annotation.test_api import rank_all

from harmrank.gateway import report_api
from harmrank.gateway.db import Annotator, AnnotatorKind, Dataset, Prompt, Ranking
from harmrank.gateway.db.annotation_models import AnnotationAssignment, AnnotationDraw
from harmrank.metrics.aggregate_humans import REFERENCE_NAME
from harmrank.metrics.ppi import ppi_mean

ADMIN = f"/v1/datasets/{DATASET}/annotation"
N_ITEMS = 40
BUDGET = 12


def disputed(i: int) -> bool:
    """Items the two judges disagree on (every fourth): the active policy favours them."""
    return i % 4 == 0


def judge_ranks(judge: str, i: int) -> list[int]:
    if disputed(i):
        return [1, 0, 0] if judge == "j1" else [0, 0, 1]
    return [0, 0, 0]


def human_ranks(i: int) -> list[int]:
    """Harmful where the judges disagree, so sampling those more biases unweighted means."""
    if disputed(i):
        return [1, 2, 0]
    return [0, 1, 0] if i % 5 == 0 else [0, 0, 0]


@pytest.fixture
def base_url(serve_app: Callable[[ASGIApp], str], db_url: str, migrated_engine: AsyncEngine) -> str:
    return serve_app(make_app(db_url, extra=[report_api.datasets_router]))


async def add_judges(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        prompts = dict(
            (
                await session.execute(
                    select(Prompt.external_id, Prompt.id)
                    .join(Dataset)
                    .where(Dataset.name == DATASET)
                )
            ).all()
        )
        for name in ("j1", "j2"):
            judge = Annotator(name=name, kind=AnnotatorKind.JUDGE, details={})
            session.add(judge)
            await session.flush()
            session.add_all(
                Ranking(
                    annotator_id=judge.id,
                    prompt_id=prompts[f"p{i}"],
                    ranks=judge_ranks(name, i),
                    raw_value="",
                    normalisations=[],
                    source="test",
                    presentation_key="",
                )
                for i in range(1, N_ITEMS + 1)
            )


async def stored_draws(sessions: Sessions) -> dict[str, tuple[float, bool]]:
    async with sessions() as session:
        found = await session.execute(
            select(Prompt.external_id, AnnotationDraw.probability, AnnotationDraw.selected).join(
                Prompt, Prompt.id == AnnotationDraw.prompt_id
            )
        )
        return {e: (p, s) for e, p, s in found.all()}


async def active_dataset(client: httpx.AsyncClient, sessions: Sessions) -> dict[str, Any]:
    await seed_dataset(client, sessions, calm_items(N_ITEMS))
    await add_judges(sessions)
    body = {"k": 1, "budget": BUDGET, "policy": "active", "seed": 3, "floor": 0.5}
    answer = await client.put(f"{ADMIN}/settings", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def harm(ranks: list[list[int]], model: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([float(r[model] != 0) for r in ranks])


async def test_the_active_policy_draws_disputed_items_and_the_report_weights_them(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    settings = await active_dataset(client, session_maker)
    assert (settings["budget"], settings["policy"], settings["seed"]) == (BUDGET, "active", 3)
    assert settings["expected"] == pytest.approx(BUDGET)
    draws = await stored_draws(session_maker)
    assert len(draws) == N_ITEMS
    pi = {int(p[1:]): q for p, (q, _) in draws.items()}
    # floor 0.5: pi = 12 * (0.5 / 40 + 0.5 * share); the 10 disputed items share the rest
    assert all(pi[i] == pytest.approx(0.75 if disputed(i) else 0.15) for i in pi)
    drawn = sorted(int(p[1:]) for p, (_, s) in draws.items() if s)
    assert settings["drawn"] == len(drawn)
    assert any(not disputed(i) for i in drawn)  # else the weights could not matter

    (token,) = await invite(client)
    page = await sign_in("ada", token)
    plan = {f"p{i}": human_ranks(i) for i in range(1, N_ITEMS + 1)}
    assert sorted(int(p[1:]) for p in await rank_all(page, plan)) == drawn
    async with session_maker() as session:
        kept = await session.execute(
            select(Prompt.external_id, AnnotationAssignment.inclusion).join(
                Prompt, Prompt.id == AnnotationAssignment.prompt_id
            )
        )
        stored = dict(kept.all())
    assert stored == {f"p{i}": pytest.approx(pi[i]) for i in drawn}

    params: dict[str, Any] = {
        "annotators": f"j1,j2,{REFERENCE_NAME}",
        "p": 0.9,
        "resamples": 0,
        "seed": 1,
    }
    answer = await client.get(f"/v1/datasets/{DATASET}/report", params=params)
    assert answer.status_code == 200, answer.text
    section = answer.json()["ppi"]
    assert section["policy"].startswith("active: probability from the judges' disagreement")
    assert f"label budget {BUDGET} of {N_ITEMS} items" in section["policy"]
    assert "active" in answer.json()["conventions"]["ppi"]
    j1 = next(r for r in section["estimates"] if r["judge"] == "j1")
    assert (j1["n_human"], j1["n_judge"]) == (len(drawn), N_ITEMS)
    rows = {(e["estimand"], e["subject"], e["method"]): e for e in j1["estimates"]}

    others = [i for i in range(1, N_ITEMS + 1) if i not in drawn]
    w = np.array([1 / pi[i] for i in drawn])
    w_u = np.array([1 / (1 - pi[i]) for i in others])
    shifts = []
    for m, model in enumerate(MODELS):
        y = harm([human_ranks(i) for i in drawn], m)
        yhat = harm([judge_ranks("j1", i) for i in drawn], m)
        yhat_u = harm([judge_ranks("j1", i) for i in others], m)
        weighted = ppi_mean(y, yhat, yhat_u, w=w, w_u=w_u)
        assert rows[("harm_rate", model, "ppi")]["estimate"] == pytest.approx(
            float(weighted.estimate)
        )
        human_only = rows[("harm_rate", model, "human_only")]["estimate"]
        assert human_only == pytest.approx(float(np.average(y, weights=w)))
        shifts.append(float(weighted.estimate - ppi_mean(y, yhat, yhat_u).estimate))
    # Unweighted, oversampling the disputed (harmful) items would inflate the harm rates.
    assert min(shifts) < -0.1, shifts


async def test_settings_are_validated_at_the_edge(
    client: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await seed_dataset(client, session_maker, calm_items(3))
    for body, where in [
        ({"k": 1, "policy": "active"}, "needs a budget"),
        ({"k": 1, "budget": 0}, "budget"),
        ({"k": 1, "budget": 2, "policy": "greedy"}, "policy"),
        ({"k": 1, "budget": 2, "floor": 0}, "floor"),
        ({"k": 1, "budget": 2, "seed": -1}, "seed"),
    ]:
        answer = await client.put(f"{ADMIN}/settings", json=body)
        assert answer.status_code == 422, answer.text
        assert where in answer.text
    defaults = (await client.get(f"{ADMIN}/settings")).json()
    assert (defaults["budget"], defaults["policy"], defaults["drawn"]) == (None, "uniform", None)


async def test_a_uniform_budget_draws_with_equal_probability_and_refuses_later_changes(
    client: httpx.AsyncClient, session_maker: Sessions, sign_in: SignIn
) -> None:
    await seed_dataset(client, session_maker, calm_items(20))
    body = {"k": 1, "budget": 5, "seed": 7}
    settings = (await client.put(f"{ADMIN}/settings", json=body)).json()
    draws = await stored_draws(session_maker)
    assert [q for q, _ in draws.values()] == [pytest.approx(0.25)] * 20
    assert settings["drawn"] == sum(s for _, s in draws.values())
    again = (await client.put(f"{ADMIN}/settings", json=body)).json()
    assert again["drawn"] == settings["drawn"]  # same seed, same draws
    (token,) = await invite(client)
    page = await sign_in("bo", token)
    await rank_all(page, {f"p{i}": [0, 0, 0] for i in range(1, 21)})
    changed = await client.put(f"{ADMIN}/settings", json={**body, "budget": 6})
    assert changed.status_code == 409, changed.text
    assert "rankings made under the current budget" in changed.json()["error"]
    same = await client.put(f"{ADMIN}/settings", json={**body, "k": 2})
    assert same.status_code == 200, same.text
