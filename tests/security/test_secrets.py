"""After a whole run with known fake provider keys, those keys are nowhere a person can look.

Not in the logs (every logger, uvicorn's access and error logs included), not in any column of
any table, not in any answer of any GET route or ``/metrics`` of any service, not in error
bodies (one judge is given a wrong key: the provider's answer echoes it back in full, as real
providers echo part of it), and not in the run's report.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, select
from tests.faults.stack import (
    TOKEN,
    Servers,
    client,
    finished,
    gateway_settings,
    migrate,
    start_downstreams,
    start_gateway,
    start_run,
    wait_for,
)
from tests.judge.conftest import KEYS

from harmrank.gateway.db.engine import create_engine
from harmrank.metrics.app import create_app as create_metrics
from harmrank.metrics.settings import MetricsSettings

WRONG_ANTHROPIC_KEY = "sk-ant-wrong-key-77e1f0a9c3"
SECRETS = [*KEYS.values(), WRONG_ANTHROPIC_KEY, TOKEN]
PROMPTS = 4


async def database_text(db_url: str) -> str:
    """Every value of every row of every table, as text."""
    engine = create_engine(db_url)
    metadata = MetaData()
    chunks: list[str] = []
    try:
        async with engine.connect() as connection:
            await connection.run_sync(metadata.reflect)
            for table in metadata.sorted_tables:
                for row in await connection.execute(select(table)):
                    chunks.append(f"{table.name}: {tuple(row)!r}")
    finally:
        await engine.dispose()
    assert any(c.startswith("rankings:") for c in chunks)
    return "\n".join(chunks)


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


async def every_get(base_url: str, values: dict[str, str]) -> list[tuple[str, int, str]]:
    """Every GET route of a service's OpenAPI document, plus its undocumented ones."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        document = (await http.get("/openapi.json")).json()
        paths = [fill(p, values) for p, ops in document["paths"].items() if "get" in ops]
        paths += ["/openapi.json", "/docs", "/metrics"]
        answers = []
        for path in paths:
            for params in ({}, {"format": "csv"}, {"format": "jsonl"}):
                if params and not path.endswith("/export"):
                    continue
                answer = await http.get(path, params=params)
                answers.append((path, answer.status_code, answer.text))
        return answers


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


async def test_no_key_leaks_anywhere_after_a_run(
    pg_url: str, servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    downstreams = start_downstreams(servers, keys={"anthropic": WRONG_ANTHROPIC_KEY})
    metrics = servers.serve(create_metrics(MetricsSettings()))
    await migrate(pg_url)
    gateway = start_gateway(servers, gateway_settings(pg_url, downstreams, worker_loops=2))
    async with client(gateway.url) as http:
        run = await start_run(http, "secrets", PROMPTS, orders=1)
        final = await wait_for(http, run["id"], finished, within=60)
        report = await http.get(f"/v1/runs/{run['id']}/report")
        failed = await http.get(f"/v1/runs/{run['id']}/tasks", params={"state": "failed"})
    # gpt4o ranked everything; claude's every call was refused for its key (its first tasks
    # called once each, the rest stopped by the breaker), and the run says so.
    assert final["status"] == "done_with_failures", final
    assert final["progress"]["judge"] == {
        **dict.fromkeys(final["progress"]["judge"], 0),
        "done": PROMPTS,
        "failed": PROMPTS,
    }
    assert {t["judge"] for t in failed.json()["items"]} == {"claude"}
    assert all("401" in t["error_message"] for t in failed.json()["items"])

    async with httpx.AsyncClient(base_url=downstreams.judge_url, timeout=30) as judge:
        item = {"prompt_id": "p", "prompt": "q?", "responses": {"a": "x", "b": "y"}}
        direct = await judge.post("/v1/judge", json={**item, "judges": ["claude"]})
    assert direct.status_code >= 400 or "error" in direct.text

    texts: dict[str, str] = {
        "report": report.text,
        "failed tasks": failed.text,
        "judge error": direct.text,
        "database": await database_text(pg_url),
    }
    values = {"run_id": str(run["id"]), "name": "secrets"}
    for service, url in {
        "gateway": gateway.url,
        "generator": downstreams.generator_url,
        "judge": downstreams.judge_url,
        "metrics": metrics.url,
    }.items():
        for path, status, body in await every_get(url, values):
            assert status < 500, (service, path, body)
            texts[f"{service} GET {path}"] = body
    for server in servers.started:
        server.stop()  # so shutdown logs are captured too
    records = caplog.records
    texts["logs"] = (
        "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in records)
        + caplog.text
    )
    assert any(r.name.startswith("uvicorn") for r in records), "uvicorn's logs were not captured"
    assert any(r.name == "uvicorn.access" for r in records)

    found: dict[str, Any] = {where: leaks(text) for where, text in texts.items() if leaks(text)}
    assert found == {}
    # The judge's answer still tells what went wrong, just without the key.
    assert "401" in direct.text
    assert "[redacted]" in direct.text
