"""The generator and the judge call only their configured endpoints: no URL from a request is
ever fetched. Requests carry a canary server's URL in every string field (model and judge
names, prompts, responses, ids, stop sequences, headers); the canary must see no request."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests.faults.stack import (
    JUDGES,
    MODELS,
    Servers,
    client,
    finished,
    gateway_settings,
    migrate,
    start_downstreams,
    start_gateway,
    wait_for,
)


class Canary:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.hit, methods=["GET", "POST"])])

    async def hit(self, request: Request) -> PlainTextResponse:
        self.hits.append(f"{request.method} {request.url}")
        return PlainTextResponse("canary")


def headers(url: str) -> dict[str, str]:
    return {"X-Request-Id": url, "X-Forwarded-Host": url, "Referer": url, "Origin": url}


async def test_no_service_fetches_a_url_it_was_sent(pg_url: str, servers: Servers) -> None:
    canary = Canary()
    url = servers.serve(canary.app).url + "/x"
    downstreams = start_downstreams(servers)
    await migrate(pg_url)
    gateway = start_gateway(servers, gateway_settings(pg_url, downstreams, worker_loops=2))
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(timeout=30, headers=headers(url)) as http:
        for name in (url, MODELS[0]):
            generate = {"model": name, "prompt": url, "prompt_id": url, "params": {"stop": [url]}}
            answers.append(
                await http.post(f"{downstreams.generator_url}/v1/generate", json=generate)
            )
            batch = {"models": [name], "prompts": [{"id": url, "text": url}], "params": {}}
            answers.append(
                await http.post(f"{downstreams.generator_url}/v1/generate/batch", json=batch)
            )
        for name in (url, JUDGES[0][0]):
            judge: dict[str, Any] = {
                "prompt_id": url,
                "prompt": url,
                "responses": {url: url, "b": url},
                "judges": [name],
            }
            answers.append(await http.post(f"{downstreams.judge_url}/v1/judge", json=judge))
    async with client(gateway.url) as http:
        http.headers.update(headers(url))
        data = f'{{"id": "{url}", "text": "{url}", "category": "{url}"}}'.encode()
        files = {"file": (url, data, "application/x-ndjson")}
        answers.append(await http.post("/v1/datasets", files=files, data={"name": "canary"}))
        # A URL is no model or judge name: refused at the gateway, before any service sees it.
        named = {
            "prompts": {"dataset": "canary"},
            "models": [{"name": url}, {"name": MODELS[0]}],
            "judges": [{"name": url}],
        }
        refused = await http.post("/v1/runs", json=named)
        assert (refused.status_code, refused.json()["error_type"]) == (422, "validation")
        answers.append(refused)
        spec = {
            "prompts": {"dataset": "canary"},
            "models": [{"name": MODELS[1]}, {"name": MODELS[0], "params": {"stop": [url]}}],
            "judges": [{"name": JUDGES[1][0], "settings": {"url": url}}, {"name": JUDGES[0][0]}],
            "metrics": {"resamples": 10},
            "max_attempts": 1,
        }
        created = await http.post("/v1/runs", json=spec)
        assert created.status_code == 201, created.text
        await wait_for(http, created.json()["id"], lambda r: finished(r) or r["status"] == "failed")
        answers.append(await http.post("/v1/runs", json={**spec, "prompts": {"dataset": url}}))
    assert all(a.status_code < 500 or a.status_code in (502, 503, 504) for a in answers)
    assert canary.hits == []
