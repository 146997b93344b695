"""A real upstream for the HTTP client's tests (uvicorn on loopback, answering as each test's
key asks) and the fixtures that build clients against it with recorded sleeps (registered for
``tests/common`` by its conftest)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from harmrank.common.http import (
    RetryPolicy,
    create_client,
)
from harmrank.common.request_id import REQUEST_ID_HEADER

SECRET = "sk-live-0123456789abcdef"


# --- the upstream ------------------------------------------------------------------------------


@dataclass
class Upstream:
    """What the test server saw, keyed by the path's key so tests never share counters."""

    base_url: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    bodies: defaultdict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))


def _failure_headers(request: Request) -> dict[str, str]:
    params = request.query_params
    if "retry_after" in params:
        return {"Retry-After": params["retry_after"]}
    if "retry_after_in" in params:
        return {
            "Retry-After": formatdate(time.time() + float(params["retry_after_in"]), usegmt=True)
        }
    return {}


def _routes(state: Upstream) -> list[Route]:
    async def record(request: Request) -> int:
        key = request.path_params["key"]
        state.hits[key] += 1
        state.bodies[key].append(await request.body())
        return state.hits[key]

    async def flaky(request: Request) -> Response:
        """Fail with ?status= the first ?times= hits, then succeed."""
        hit = await record(request)
        times = int(request.query_params.get("times", "1000000"))
        if hit > times:
            return JSONResponse({"hits": hit})
        status = int(request.query_params["status"])
        body: dict[str, Any] = {"error": {"message": f"failure {hit}"}}
        if "wait_in_body" in request.query_params:
            body["error"]["wait"] = float(request.query_params["wait_in_body"])
        return JSONResponse(body, status_code=status, headers=_failure_headers(request))

    async def fail(request: Request) -> Response:
        """Always fail with ?status=, the body shaped per ?kind=."""
        await record(request)
        status = int(request.query_params["status"])
        auth = request.headers.get("authorization", "")
        token = auth.partition(" ")[2]
        bodies: dict[str, Response] = {
            "openai": JSONResponse({"error": {"message": "model overloaded", "type": "x"}}, status),
            "tgi": JSONResponse({"error": "Input too long", "error_type": "validation"}, status),
            "fastapi": JSONResponse(
                {"detail": [{"loc": ["body"], "msg": "field required"}]}, status
            ),
            "text": PlainTextResponse("t" * 300, status),
            "empty": Response(b"", status),
            "echo_auth_json": JSONResponse({"error": f"bad credentials: {auth}"}, status),
            "echo_auth_text": PlainTextResponse(f"you sent {auth} and {token}", status),
        }
        return bodies[request.query_params.get("kind", "openai")]

    async def slow(request: Request) -> Response:
        await record(request)
        await asyncio.sleep(float(request.query_params.get("delay", "1")))
        return JSONResponse({"slow": True})

    async def echo(request: Request) -> Response:
        return JSONResponse({"request_id": request.headers.get(REQUEST_ID_HEADER)})

    return [
        Route("/flaky/{key}", flaky, methods=["GET", "POST"]),
        Route("/fail/{key}", fail, methods=["GET", "POST"]),
        Route("/slow/{key}", slow),
        Route("/echo", echo),
    ]


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test upstream did not start")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    state = Upstream()
    # Binding the socket ourselves avoids the race of "find a free port, then hope it stays free".
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    state.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        Starlette(routes=_routes(state)),
        lifespan="off",
        ws="none",
        http="h11",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    _wait_until_started(server, thread)
    yield state
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def closed_port() -> Iterator[str]:
    # Bound but not listening: connections are refused, and nobody else can take the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


# --- the client side ---------------------------------------------------------------------------


@dataclass
class Recorder:
    """Stands in for ``sleep`` and ``on_retry``; remembers what the transport asked for."""

    delays: list[float] = field(default_factory=list)
    retries: list[tuple[int, str, float]] = field(default_factory=list)

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)

    def on_retry(self, attempt: int, reason: str, delay: float) -> None:
        self.retries.append((attempt, reason, delay))

    @property
    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.retries]


ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
async def make_client(upstream: Upstream, recorder: Recorder) -> AsyncIterator[ClientFactory]:
    clients: list[httpx.AsyncClient] = []

    def make(
        *,
        base_url: str | None = None,
        timeout: float = 5.0,
        headers: dict[str, str] | None = None,
        random: Callable[[], float] = lambda: 1.0,
        **policy: Any,
    ) -> httpx.AsyncClient:
        retry = RetryPolicy(sleep=recorder.sleep, random=random, **policy)
        client = create_client(
            base_url or upstream.base_url,
            timeout=timeout,
            policy=retry,
            headers=headers,
            on_retry=recorder.on_retry,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
