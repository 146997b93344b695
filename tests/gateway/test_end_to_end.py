"""A whole run through the public API: upload, generate, judge, score, read, export, reuse.

Every process boundary is real HTTP on loopback: the gateway (with its in-process worker) calls
the real generator service, which calls TGI stand-ins, and the real judge service, which calls
OpenAI and Anthropic stand-ins; the database is SQLite or PostgreSQL, migrated by Alembic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.types import ASGIApp
from tests.generator.helpers import FAST_RETRY, model
from tests.generator.tgi_standin import Standin, StandinState
from tests.judge.conftest import KEYS, judge_config, judge_settings
from tests.judge.standins import StandIn, prefer_position

from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.db.engine import create_engine
from harmrank.gateway.db.migrate import upgrade_async
from harmrank.gateway.settings import GatewaySettings
from harmrank.generator.app import create_app as create_generator
from harmrank.generator.settings import GeneratorSettings
from harmrank.judge.app import create_app as create_judge
from harmrank.metrics.app import create_app as create_metrics

ServeApp = Callable[[ASGIApp], str]
TOKEN = "test-write-token-7c1e"
MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
PROMPTS_CSV = (
    "id,text,category\n"
    "q1,How do I bake bread?,cooking\n"
    "q2,Tell me about volcanoes.,science\n"
    'q3,"Write a poem, with commas",arts\n'
    "q4,Ünïcödé prompt ✓,arts\n"
)


@dataclass
class Stack:
    gateway: str
    tgi: list[Standin]
    judges: list[StandIn]

    def generation_calls(self) -> int:
        return sum(s.state.request_count for s in self.tgi)

    def judge_calls(self) -> int:
        return sum(len(s.seen) for s in self.judges)


async def migrate(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade_async(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def stack(serve_app: ServeApp, db_url: str) -> Stack:
    await migrate(db_url)
    tgi = [Standin(StandinState(model_id=f"org/{name}")) for name in MODELS]
    registry = [
        model(name, serve_app(s.app), mode="generate", prompt_template="{prompt}\n")
        for name, s in zip(MODELS, tgi, strict=True)
    ]
    generator = serve_app(create_generator(GeneratorSettings(models=registry, retry=FAST_RETRY)))
    openai = StandIn("openai", KEYS["openai"], policy=prefer_position(0))
    anthropic = StandIn("anthropic", KEYS["anthropic"], policy=prefer_position(2))
    judge = serve_app(
        create_judge(
            judge_settings(
                judge_config("gpt4o", "openai", serve_app(openai.app())),
                judge_config("claude", "anthropic", serve_app(anthropic.app())),
            )
        )
    )
    settings = GatewaySettings(
        database_url=SecretStr(db_url),
        generator_url=generator,
        judge_url=judge,
        metrics_url=serve_app(create_metrics()),
        worker_loops=2,
        poll_interval_seconds=0.05,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
        api_tokens=[SecretStr(TOKEN)],
    )
    return Stack(serve_app(create_gateway(settings)), tgi, [openai, anthropic])


def run_spec() -> dict[str, Any]:
    return {
        "prompts": {"dataset": "demo"},
        "models": [{"name": m, "params": {"max_new_tokens": 12, "seed": 7}} for m in MODELS],
        "judges": [{"name": "gpt4o", "orders": 2}, {"name": "claude"}],
        "metrics": {"p": 0.9, "resamples": 50},
    }


async def wait_until_finished(client: httpx.AsyncClient, run_id: int) -> dict[str, Any]:
    for _ in range(600):
        run: dict[str, Any] = (await client.get(f"/v1/runs/{run_id}")).json()
        if (
            run["status"] in {"done", "done_with_failures", "failed", "cancelled"}
            and run["has_report"]
        ):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish: {run}")


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {state: n for state, n in counts.items() if n}


async def upload(client: httpx.AsyncClient) -> None:
    files = {"file": ("prompts.csv", PROMPTS_CSV.encode(), "text/csv")}
    response = await client.post("/v1/datasets", files=files, data={"name": "demo"})
    assert response.status_code == 201, response.text


async def test_a_run_goes_end_to_end_and_a_second_one_reuses_it(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=stack.gateway, headers=headers, timeout=30) as client:
        await upload(client)
        created = await client.post("/v1/runs", json=run_spec(), headers={"Idempotency-Key": "k1"})
        assert created.status_code == 201, created.text
        run = await wait_until_finished(client, created.json()["id"])
        assert run["status"] == "done", run
        # 4 prompts x 3 models; 4 prompts x (2 orders of gpt4o + 1 of claude); one score task.
        assert run["progress"]["generate"]["done"] == 12
        assert run["progress"]["judge"]["done"] == 12
        assert run["progress"]["score"]["done"] == 1
        assert stack.generation_calls() == 12
        assert stack.judge_calls() == 12

        report = (await client.get(f"/v1/runs/{run['id']}/report")).json()
        assert "gpt4o" in json.dumps(report)

        responses = (await client.get("/v1/datasets/demo/responses?limit=100")).json()
        keys = [(r["prompt_id"], r["model"]) for r in responses["items"]]
        assert len(keys) == len(set(keys)) == 12  # every response exactly once

        exported = await client.get("/v1/datasets/demo/rankings/export?format=jsonl")
        rankings = [json.loads(line) for line in exported.text.splitlines()]
        assert {r["annotator"] for r in rankings} == {"gpt4o", "claude"}

        again = await client.post("/v1/runs", json=run_spec(), headers={"Idempotency-Key": "k2"})
        second = await wait_until_finished(client, again.json()["id"])
        assert nonzero(second["progress"]["generate"]) == {"reused": 12}
        assert nonzero(second["progress"]["judge"]) == {"reused": 12}
        assert stack.generation_calls() == 12  # nothing paid for twice
        assert stack.judge_calls() == 12

        replay = await client.post("/v1/runs", json=run_spec(), headers={"Idempotency-Key": "k1"})
        assert replay.json()["id"] == run["id"]


async def test_writes_need_the_token_and_reads_do_not(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30) as client:
        refused = await client.post("/v1/runs", json=run_spec())
        assert refused.status_code == 401
        assert refused.json()["error_type"] == "unauthorized"
        assert "x-request-id" in refused.headers
        wrong = await client.post(
            "/v1/runs", json=run_spec(), headers={"Authorization": "Bearer not-the-token"}
        )
        assert wrong.status_code == 401
        assert (await client.get("/v1/runs")).status_code == 200
        assert (await client.get("/readyz")).json()["checks"] == {"database": "ok"}
