"""Bad input over real HTTP: bodies over the limit, malformed files, and text of any kind.

- Every service refuses a body over its ``max_body_bytes`` with 413 in the common error shape,
  whether the client declared the length or streamed it chunked; the gateway stores nothing.
- A malformed CSV upload names file, line and field of every problem and stores nothing.
- Prompts and responses of any Unicode, control characters and very long text go through
  upload, a whole run (a model server that echoes its input), the API and both exports intact.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.faults.stack import (
    TOKEN,
    Downstreams,
    Servers,
    client,
    finished,
    gateway_settings,
    migrate,
    start_downstreams,
    start_gateway,
    wait_for,
)
from tests.generator.helpers import model

from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.db.engine import sqlite_url
from harmrank.gateway.settings import GatewaySettings
from harmrank.generator.app import create_app as create_generator
from harmrank.generator.settings import GeneratorSettings
from harmrank.judge.app import create_app as create_judge
from harmrank.judge.settings import JudgeSettings
from harmrank.metrics.app import create_app as create_metrics
from harmrank.metrics.settings import MetricsSettings

LIMIT = 4096
# The service behind each path, as its settings' prefix names it.
SERVICES = {
    "/v1/runs": "GATEWAY",
    "/v1/generate": "GENERATOR",
    "/v1/judge": "JUDGE",
    "/v1/rbo": "METRICS",
}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


async def chunked(data: bytes) -> AsyncIterator[bytes]:
    """No Content-Length: the limit must be enforced while the body streams in."""
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    """A dataset upload's body and content type, to send as one piece or streamed."""
    files = {"file": ("p.jsonl", data, "application/x-ndjson")}
    request = httpx.Request("POST", "http://x", files=files, data={"name": name})
    return request.read(), request.headers["content-type"]


async def test_every_service_refuses_a_body_over_its_limit(servers: Servers, tmp_path: Any) -> None:
    gateway = GatewaySettings(
        database_url=SecretStr(sqlite_url(tmp_path / "g.db")),
        migrate_on_start=True,
        max_body_bytes=LIMIT,
        api_tokens=[SecretStr(TOKEN)],
    )
    urls = {
        "/v1/runs": servers.serve(create_gateway(gateway)).url,
        "/v1/generate": servers.serve(
            create_generator(GeneratorSettings(models=[], max_body_bytes=LIMIT))
        ).url,
        "/v1/judge": servers.serve(create_judge(JudgeSettings(max_body_bytes=LIMIT))).url,
        "/v1/rbo": servers.serve(create_metrics(MetricsSettings(max_body_bytes=LIMIT))).url,
    }
    big = json.dumps({"padding": "x" * LIMIT}).encode()
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as http:
        for path, url in urls.items():
            for body in (big, chunked(big)):
                answer = await http.post(
                    url + path, content=body, headers={"content-type": "application/json"}
                )
                assert answer.status_code == 413, (path, answer.text)
                assert answer.json()["error_type"] == "payload_too_large"
                assert set(answer.json()) == {"error", "error_type"}
                # Which limit, and the setting of the service that refused it.
                assert "its limit is 4,096 bytes" in answer.json()["error"]
                assert f"HARMRANK_{SERVICES[path]}_MAX_BODY_BYTES" in answer.json()["error"]
        gateway_url = urls["/v1/runs"]
        lines = "\n".join(json.dumps({"text": f"question {i} " + "y" * 50}) for i in range(100))
        form, content_type = multipart(lines.encode(), "b")
        for content in (form, chunked(form)):
            upload = await http.post(
                f"{gateway_url}/v1/datasets",
                content=content,
                headers={"content-type": content_type},
            )
            assert upload.status_code == 413, upload.text
        small = {"file": ("p.jsonl", b'{"text": "fits"}', "application/x-ndjson")}
        fits = await http.post(f"{gateway_url}/v1/datasets", files=small, data={"name": "s"})
        assert fits.status_code == 201, fits.text
        listed = (await http.get(f"{gateway_url}/v1/datasets")).json()["items"]
    assert [d["name"] for d in listed] == ["s"]  # nothing of the refused uploads was kept


async def test_a_malformed_csv_upload_names_each_problem_and_stores_nothing(
    servers: Servers, tmp_path: Any
) -> None:
    settings = GatewaySettings(
        database_url=SecretStr(sqlite_url(tmp_path / "g.db")), migrate_on_start=True
    )
    url = servers.serve(create_gateway(settings)).url
    data = (
        b"id,text,category\n"
        b"a,fine,x\n"
        b"b,,x\n"  # empty text
        b"c,too,many,cells\n"
        b"a,fine again,x\n"  # duplicate id
        b"d,bad \xff byte,x\n"
    )
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        files = {"file": ("prompts.csv", data, "text/csv")}
        answer = await http.post("/v1/datasets", files=files, data={"name": "bad"})
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body["error_type"] == "invalid_dataset"
        problems = {(d["file"], d["line"], d["field"]) for d in body["details"]}
        assert {("prompts.csv", 3, "text"), ("prompts.csv", 4, "cell 4")} <= problems
        assert ("prompts.csv", 6, "") in problems or ("prompts.csv", 6, "text") in problems
        assert (await http.get("/v1/datasets/bad")).status_code == 404
        assert (await http.get("/v1/datasets")).json()["items"] == []


class Echo:
    """A TGI ``/generate`` that answers its inputs unchanged, so responses carry any text."""

    def __init__(self) -> None:
        routes = [
            Route("/generate", self.generate, methods=["POST"]),
            Route("/info", self.info, methods=["GET"]),
        ]
        self.app = Starlette(routes=routes)

    async def generate(self, request: Request) -> JSONResponse:
        inputs = (await request.json())["inputs"]
        details = {"finish_reason": "eos_token", "generated_tokens": 1, "seed": None}
        return JSONResponse({"generated_text": inputs, "details": details})

    async def info(self, _: Request) -> JSONResponse:
        return JSONResponse({"model_id": "echo", "model_sha": "0"})


TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=200,
).filter(lambda t: t.strip() != "")
LONG = st.builds(lambda t, n: (t * n)[:60_000], TEXT, st.integers(100, 2_000))


def rows_of(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    text = answer.content.decode("utf-8")
    if answer.headers["content-type"].startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(text, newline="")))
    return [json.loads(line) for line in text.split("\n") if line]


@pytest.fixture
async def echo_stack(servers: Servers, pg_url: str) -> AsyncIterator[httpx.AsyncClient]:
    echo = [Echo(), Echo()]
    registry = [model(f"echo-{i}", servers.serve(e.app).url) for i, e in enumerate(echo)]
    base = start_downstreams(servers)
    generator = servers.serve(create_generator(GeneratorSettings(models=registry))).url
    downstreams = Downstreams(generator, base.judge_url, [], base.judges, base.metrics_url)
    await migrate(pg_url)
    gateway = start_gateway(servers, gateway_settings(pg_url, downstreams, worker_loops=2))
    async with client(gateway.url) as http:
        yield http


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    from tests.conftest import throwaway_postgres_database

    async with throwaway_postgres_database() as url:
        yield url


async def test_any_text_goes_through_a_run_and_comes_back_intact(
    echo_stack: httpx.AsyncClient,
) -> None:
    http = echo_stack
    datasets: list[tuple[str, list[str]]] = []

    @given(texts=st.lists(st.one_of(TEXT, LONG), min_size=1, max_size=3, unique_by=str.casefold))
    @settings(
        max_examples=6,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def upload(texts: list[str]) -> None:
        # Uploads only: the runs go in one batch after, so examples stay cheap.
        if len({" ".join(t.split()).casefold() for t in texts}) < len(texts):
            return  # the upload refuses texts that differ only in case or spacing
        datasets.append((f"d{len(datasets)}", texts))

    upload()
    for name, texts in datasets:
        data = "\n".join(json.dumps({"text": t}) for t in texts).encode()
        files = {"file": ("p.jsonl", data, "application/x-ndjson")}
        created = await http.post("/v1/datasets", files=files, data={"name": name})
        assert created.status_code == 201, created.text
        spec = {
            "prompts": {"dataset": name},
            "models": [{"name": "echo-0"}, {"name": "echo-1"}],
            "judges": [{"name": "gpt4o"}],
            "metrics": {"resamples": 5},
        }
        run = await http.post("/v1/runs", json=spec)
        assert run.status_code == 201, run.text
        final = await wait_for(http, run.json()["id"], finished, within=60)
        assert final["status"] == "done", final
        page = await http.get(f"/v1/datasets/{name}/responses", params={"limit": 1000})
        items = page.json()["items"]
        assert sorted(i["prompt"] for i in items) == sorted(texts * 2)
        assert all(i["text"] == i["prompt"] for i in items)
        for fmt in ("csv", "jsonl"):
            # raw: CSV cells starting with =, +, - or @ are otherwise neutralised with a "'".
            params = {"format": fmt, "raw": "true"}
            export = await http.get(f"/v1/datasets/{name}/responses/export", params=params)
            rows = rows_of(export)
            assert sorted(r["text"] for r in rows) == sorted(texts * 2)
            assert all(r["text"] == r["prompt"] for r in rows)
