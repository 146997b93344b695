"""The OpenAI-compatible backend (Ollama, vLLM, SGLang) is probed through ``GET /v1/models``:
such servers have no ``/health`` or ``/info`` (Ollama answers 404), and one server serves many
models, so each configured model is healthy only when its ``served_model`` is listed."""

from __future__ import annotations

import httpx
from openai.pagination import SyncPage
from openai.types import Model
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tests.generator.conftest import ServeApp
from tests.generator.helpers import StartGenerator, model

SERVED = ("qwen2.5:0.5b", "smollm2:360m")


def ollama_standin(served: tuple[str, ...] = SERVED) -> Starlette:
    """What Ollama answers: its OpenAI model list (checked against the SDK's types) and a plain
    404 for every other path, ``/health`` and ``/info`` included."""

    async def models(_: Request) -> Response:
        data = [Model(id=m, object="model", created=1733000000, owned_by="library") for m in served]
        page = SyncPage[Model](data=data, object="list")
        return JSONResponse(page.model_dump(mode="json"))

    async def not_found(_: Request) -> Response:
        return PlainTextResponse("404 page not found", status_code=404)

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/{path:path}", not_found, methods=["GET", "POST"]),
        ]
    )


async def test_each_model_is_healthy_when_its_server_lists_it(
    serve_app: ServeApp, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    ollama = serve_app(ollama_standin())
    url = start_generator(
        [
            model("qwen", ollama, backend="openai", mode="chat", served_model="qwen2.5:0.5b"),
            model("smollm", ollama, backend="openai", mode="chat", served_model="smollm2:360m"),
            model("llama", ollama, backend="openai", mode="chat", served_model="llama3.2:1b"),
        ]
    )

    response = await client.get(f"{url}/v1/models")

    entries = {entry["name"]: entry for entry in response.json()["models"]}
    assert entries["qwen"]["healthy"] is True, entries["qwen"]["health_reason"]
    assert entries["qwen"]["server"]["model_id"] == "qwen2.5:0.5b"
    assert entries["smollm"]["healthy"] is True
    assert entries["smollm"]["server"]["model_id"] == "smollm2:360m"
    llama = entries["llama"]
    assert llama["healthy"] is False
    assert "'llama3.2:1b'" in llama["health_reason"]
    assert "qwen2.5:0.5b, smollm2:360m" in llama["health_reason"]
    assert llama["server"] is None


async def test_a_server_without_the_model_list_is_unhealthy(
    serve_app: ServeApp, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    async def not_found(_: Request) -> Response:
        return PlainTextResponse("404 page not found", status_code=404)

    bare = serve_app(Starlette(routes=[Route("/{path:path}", not_found)]))
    url = start_generator([model("qwen", bare, backend="openai", mode="chat", served_model="q")])

    response = await client.get(f"{url}/v1/models")
    (entry,) = response.json()["models"]

    assert entry["healthy"] is False
    assert "404" in entry["health_reason"]
