"""RequestIdMiddleware through a real FastAPI app over ``httpx.ASGITransport``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.types import Message, Receive, Scope, Send

from harmrank.common.errors import Conflict, register_error_handlers
from harmrank.common.http import create_client
from harmrank.common.request_id import (
    MAX_REQUEST_ID_LENGTH,
    REQUEST_ID_HEADER,
    RequestIdMiddleware,
    current_request_id,
    is_valid_request_id,
    new_request_id,
    request_id_scope,
)

HEX32 = re.compile(r"[0-9a-f]{32}")


def _echo_app() -> FastAPI:
    """The downstream: tells what X-Request-Id it received."""
    app = FastAPI()

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, str | None]:
        return {"received": request.headers.get(REQUEST_ID_HEADER)}

    return app


def _app(downstream: httpx.AsyncClient) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)
    register_error_handlers(app)

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, str | None]:
        return {"context": current_request_id(), "state": request.state.request_id}

    @app.get("/whoami-sync")
    def whoami_sync() -> dict[str, str | None]:
        return {"context": current_request_id()}

    @app.get("/downstream")
    async def call_downstream() -> dict[str, str | None]:
        answer = await downstream.get("/echo")
        received: str | None = answer.json()["received"]
        return {"received": received}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("taken")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    echo = httpx.ASGITransport(app=_echo_app())
    async with create_client("http://downstream", timeout=5.0, transport=echo) as downstream:
        transport = httpx.ASGITransport(app=_app(downstream))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


async def test_generates_an_id_when_none_is_sent(client: httpx.AsyncClient) -> None:
    response = await client.get("/whoami")
    request_id = response.headers[REQUEST_ID_HEADER]
    assert HEX32.fullmatch(request_id)
    assert response.json() == {"context": request_id, "state": request_id}


async def test_keeps_a_sane_incoming_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/whoami", headers={REQUEST_ID_HEADER: "job-42 step:judge"})
    assert response.headers[REQUEST_ID_HEADER] == "job-42 step:judge"
    assert response.json()["context"] == "job-42 step:judge"


async def test_keeps_an_id_of_the_maximum_length(client: httpx.AsyncClient) -> None:
    longest = "a" * MAX_REQUEST_ID_LENGTH
    response = await client.get("/whoami", headers={REQUEST_ID_HEADER: longest})
    assert response.headers[REQUEST_ID_HEADER] == longest


@pytest.mark.parametrize(
    "incoming",
    [b"a" * (MAX_REQUEST_ID_LENGTH + 1), b"caf\xe9", b"tab\there", b"bell\x07", b""],
    ids=["too-long", "non-ascii", "tab", "control", "empty"],
)
async def test_replaces_an_insane_incoming_id(client: httpx.AsyncClient, incoming: bytes) -> None:
    response = await client.get("/whoami", headers={REQUEST_ID_HEADER.encode(): incoming})
    request_id = response.headers[REQUEST_ID_HEADER]
    assert HEX32.fullmatch(request_id)
    assert response.json()["context"] == request_id


async def test_sync_endpoints_see_the_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/whoami-sync", headers={REQUEST_ID_HEADER: "sync-1"})
    assert response.json() == {"context": "sync-1"}


async def test_error_responses_carry_the_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/conflict", headers={REQUEST_ID_HEADER: "err-1"})
    assert response.status_code == 409
    assert response.headers[REQUEST_ID_HEADER] == "err-1"


async def test_the_id_reaches_downstream_calls(client: httpx.AsyncClient) -> None:
    response = await client.get("/downstream", headers={REQUEST_ID_HEADER: "trace-me"})
    assert response.json() == {"received": "trace-me"}


async def test_the_context_is_restored_after_the_request(client: httpx.AsyncClient) -> None:
    await client.get("/whoami", headers={REQUEST_ID_HEADER: "leak?"})
    assert current_request_id() is None


async def test_non_http_scopes_pass_through_untouched() -> None:
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    scope: Scope = {"type": "lifespan"}
    await RequestIdMiddleware(inner)(scope, receive, send)
    assert seen == [{"type": "lifespan"}]


def test_request_id_scope_sets_and_restores() -> None:
    with request_id_scope("outer") as outer:
        assert outer == current_request_id() == "outer"
        with request_id_scope() as inner:
            assert HEX32.fullmatch(inner)
            assert current_request_id() == inner
        assert current_request_id() == "outer"
    assert current_request_id() is None


def test_validity_rules() -> None:
    assert is_valid_request_id(new_request_id())
    assert new_request_id() != new_request_id()
    assert not is_valid_request_id("line\nbreak")
    assert not is_valid_request_id("x" * 129)
