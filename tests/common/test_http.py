"""The client factory and retry policy, over real HTTP to a uvicorn server on loopback.

Sleeps are injected and recorded, so the retry schedule is asserted exactly and runs fast.
"""

from __future__ import annotations

import asyncio
import inspect
import json
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

from harmrank.common.errors import (
    HarmrankError,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from harmrank.common.http import (
    RetryingTransport,
    RetryPolicy,
    call,
    create_client,
    parse_retry_after,
    raise_for_upstream,
)
from harmrank.common.request_id import REQUEST_ID_HEADER, request_id_scope

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


# --- retries on status -------------------------------------------------------------------------


async def test_429_with_retry_after_seconds_is_retried_after_that_delay(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client()
    response = await client.get(
        f"/flaky/{key}", params={"status": 429, "times": 2, "retry_after": 1}
    )
    assert response.status_code == 200
    assert response.json() == {"hits": 3}
    assert recorder.delays == [1.0, 1.0]
    assert recorder.retries == [(1, "status_429", 1.0), (2, "status_429", 1.0)]


async def test_retry_after_as_http_date_is_honoured(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client()
    params = {"status": 503, "times": 1, "retry_after_in": 10}
    response = await client.get(f"/flaky/{key}", params=params)
    assert response.status_code == 200
    # The date has whole-second precision and some time passes before it is read.
    assert len(recorder.delays) == 1
    assert 8.0 < recorder.delays[0] <= 10.0


async def test_retry_after_beyond_max_delay_gives_up_at_once(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client(max_delay=30.0)
    params = {"status": 429, "retry_after": 120}
    response = await client.get(f"/flaky/{key}", params=params)
    assert response.status_code == 429
    assert upstream.hits[key] == 1
    assert recorder.delays == []
    with pytest.raises(UpstreamUnavailable, match=r"retry after 120 s"):
        await call(client, "GET", f"/flaky/{key}", upstream="judge", params=params)


def _wait_in_body(body: bytes) -> float | None:
    wait = json.loads(body)["error"].get("wait")
    return None if wait is None else float(wait)


async def test_a_delay_stated_in_the_body_is_honoured(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client(body_delay=_wait_in_body)
    params = {"status": 429, "times": 2, "wait_in_body": 2.5}
    response = await client.get(f"/flaky/{key}", params=params)
    assert response.json() == {"hits": 3}
    assert recorder.delays == [2.5, 2.5]


async def test_retry_after_wins_over_the_body_and_no_statement_backs_off(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client(body_delay=_wait_in_body, base_delay=0.5)
    params = {"status": 503, "times": 1, "retry_after": 1, "wait_in_body": 7}
    assert (await client.get(f"/flaky/{key}", params=params)).status_code == 200
    assert (await client.get(f"/flaky/{key}-2", params={"status": 503, "times": 1})).is_success
    assert recorder.delays == [1.0, 0.5]


async def test_a_body_delay_beyond_max_delay_gives_up_with_the_body_intact(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client(body_delay=_wait_in_body, max_delay=30.0)
    params = {"status": 429, "wait_in_body": 120}
    response = await client.get(f"/flaky/{key}", params=params)
    assert response.status_code == 429
    assert response.json()["error"] == {"message": "failure 1", "wait": 120.0}
    assert upstream.hits[key] == 1
    assert recorder.delays == []


async def test_503_without_retry_after_backs_off_exponentially_up_to_the_cap(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    # random() == 1.0 shows the ceiling of each full-jitter draw.
    client = make_client(base_delay=0.5, multiplier=2.0, max_delay=1.5)
    response = await client.get(f"/flaky/{key}", params={"status": 503, "times": 4})
    assert response.status_code == 200
    assert recorder.delays == [0.5, 1.0, 1.5, 1.5]
    assert recorder.reasons == ["status_503"] * 4


async def test_backoff_is_jittered_below_the_ceiling(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client(random=lambda: 0.25, base_delay=1.0, multiplier=3.0)
    await client.get(f"/flaky/{key}", params={"status": 500, "times": 3})
    assert recorder.delays == [0.25, 0.75, 2.25]


@pytest.mark.parametrize("status", [408, 409, 500, 502, 504, 507])
async def test_retryable_statuses_are_retried(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str, status: int
) -> None:
    response = await make_client().get(f"/flaky/{key}", params={"status": status, "times": 1})
    assert response.status_code == 200
    assert upstream.hits[key] == 2
    assert recorder.reasons == [f"status_{status}"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_client_errors_are_not_retried(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str, status: int
) -> None:
    response = await make_client().get(f"/flaky/{key}", params={"status": status, "times": 1})
    assert response.status_code == status
    assert upstream.hits[key] == 1
    assert recorder.retries == []


async def test_attempts_are_capped_and_the_last_response_returned(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client(max_attempts=3)
    response = await client.get(f"/flaky/{key}", params={"status": 503})
    assert response.status_code == 503
    assert response.json() == {"error": {"message": "failure 3"}}
    assert upstream.hits[key] == 3
    assert [attempt for attempt, _, _ in recorder.retries] == [1, 2]


async def test_post_bodies_are_replayed_identically(
    make_client: ClientFactory, upstream: Upstream, key: str
) -> None:
    payload = {"prompt": "rank these", "responses": ["a", "b", "c"], "seed": 7}
    response = await make_client().post(
        f"/flaky/{key}", params={"status": 503, "times": 2}, json=payload
    )
    assert response.status_code == 200
    bodies = upstream.bodies[key]
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2] == httpx.Request("POST", "/", json=payload).content


async def test_streaming_request_bodies_are_not_retried(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    response = await make_client().post(
        f"/flaky/{key}", params={"status": 503, "times": 1}, content=body()
    )
    assert response.status_code == 503
    assert upstream.bodies[key] == [b"part one, part two"]
    assert recorder.retries == []


async def test_streaming_responses_are_retried_before_the_body_is_read(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client()
    params = {"status": 429, "times": 1, "retry_after": 0}
    async with client.stream("GET", f"/flaky/{key}", params=params) as response:
        assert response.status_code == 200
        assert await response.aread() == b'{"hits":2}'
    assert recorder.retries == [(1, "status_429", 0.0)]


# --- retries on transport errors ---------------------------------------------------------------


async def test_connect_errors_are_retried_then_raised(
    make_client: ClientFactory, closed_port: str, recorder: Recorder
) -> None:
    client = make_client(base_url=closed_port, max_attempts=3)
    with pytest.raises(httpx.ConnectError):
        await client.get("/anything")
    assert recorder.reasons == ["connect_error", "connect_error"]
    assert recorder.delays == [0.5, 1.0]


async def test_connect_errors_can_be_left_alone(
    make_client: ClientFactory, closed_port: str, recorder: Recorder
) -> None:
    client = make_client(base_url=closed_port, retry_on_connect_errors=False)
    with pytest.raises(httpx.ConnectError):
        await client.get("/anything")
    assert recorder.retries == []


async def test_timeouts_are_retried_then_raised(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client(timeout=0.1, max_attempts=2)
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"/slow/{key}")
    # Counted on the client side: on a loaded machine the server may log a hit after we gave up.
    assert recorder.retries == [(1, "timeout", 0.5)]


async def test_timeouts_can_be_left_alone(
    make_client: ClientFactory, upstream: Upstream, recorder: Recorder, key: str
) -> None:
    client = make_client(timeout=0.1, retry_on_timeouts=False)
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"/slow/{key}")
    assert recorder.retries == []


async def test_dropped_connections_are_retried(recorder: Recorder) -> None:
    """A server that hangs up without answering (a stale keep-alive connection, say)."""
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        return httpx.Response(200)

    policy = RetryPolicy(sleep=recorder.sleep)
    transport = RetryingTransport(httpx.MockTransport(handler), policy, on_retry=recorder.on_retry)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("http://x/")).status_code == 200
    assert recorder.reasons == ["network_error"]


# --- the request id ----------------------------------------------------------------------------


async def test_the_current_request_id_is_sent(make_client: ClientFactory) -> None:
    client = make_client()
    with request_id_scope("req-123"):
        response = await client.get("/echo")
    assert response.json() == {"request_id": "req-123"}


async def test_no_request_id_is_invented_outside_a_request(make_client: ClientFactory) -> None:
    response = await make_client().get("/echo")
    assert response.json() == {"request_id": None}


async def test_an_explicit_request_id_wins(make_client: ClientFactory) -> None:
    with request_id_scope("from-context"):
        response = await make_client().get("/echo", headers={REQUEST_ID_HEADER: "explicit"})
    assert response.json() == {"request_id": "explicit"}


async def test_the_request_id_survives_retries(
    make_client: ClientFactory, upstream: Upstream, key: str
) -> None:
    seen: list[str | None] = []

    async def remember(request: httpx.Request) -> None:
        seen.append(request.headers.get(REQUEST_ID_HEADER))

    client = make_client()
    with request_id_scope("steady"):
        await client.get(f"/flaky/{key}", params={"status": 503, "times": 1})
        client.event_hooks["request"].append(remember)
        await client.get(f"/flaky/{key}", params={"status": 503, "times": 1})
    assert seen == ["steady"]  # hooks run once per send; the transport resends that request


# --- mapping failures to the common errors -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "error", "reason"),
    [
        (503, "openai", UpstreamUnavailable, "model overloaded"),
        (429, "openai", UpstreamUnavailable, "model overloaded"),
        (500, "openai", UpstreamError, "model overloaded"),
        (502, "tgi", UpstreamError, "Input too long"),
        (504, "openai", UpstreamTimeout, "model overloaded"),
        (400, "tgi", UpstreamRejected, "Input too long"),
        (422, "fastapi", UpstreamRejected, "field required"),
        (401, "empty", UpstreamRejected, "Unauthorized"),
    ],
)
async def test_final_errors_map_to_the_common_errors(
    make_client: ClientFactory,
    key: str,
    status: int,
    kind: str,
    error: type[HarmrankError],
    reason: str,
) -> None:
    client = make_client(max_attempts=2)
    with pytest.raises(error) as caught:
        await call(
            client,
            "GET",
            f"/fail/{key}",
            upstream="judge-openai",
            params={"status": status, "kind": kind},
        )
    assert type(caught.value) is error
    assert caught.value.message == f"judge-openai answered {status}: {reason}"


async def test_text_bodies_are_cut_to_200_characters(make_client: ClientFactory, key: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        await call(
            make_client(),
            "GET",
            f"/fail/{key}",
            upstream="tgi",
            params={"status": 400, "kind": "text"},
        )
    assert caught.value.message == "tgi answered 400: " + "t" * 200


async def test_accepted_statuses_are_returned(make_client: ClientFactory, key: str) -> None:
    response = await call(
        make_client(),
        "GET",
        f"/fail/{key}",
        upstream="metrics",
        accept_statuses={404},
        params={"status": 404},
    )
    assert response.status_code == 404


async def test_success_is_returned(make_client: ClientFactory, key: str) -> None:
    response = await call(
        make_client(),
        "POST",
        f"/flaky/{key}",
        upstream="metrics",
        params={"status": 503, "times": 1},
        json={"x": 1},
    )
    assert response.json() == {"hits": 2}


async def test_timeouts_map_to_upstream_timeout(make_client: ClientFactory, key: str) -> None:
    client = make_client(timeout=0.1, max_attempts=1)
    with pytest.raises(UpstreamTimeout, match=r"^generator timed out \(ReadTimeout\)$"):
        await call(client, "GET", f"/slow/{key}", upstream="generator")


async def test_connect_errors_map_to_upstream_unavailable(
    make_client: ClientFactory, closed_port: str
) -> None:
    client = make_client(base_url=closed_port, max_attempts=2)
    with pytest.raises(UpstreamUnavailable, match=r"^metrics is unreachable \(ConnectError\)$"):
        await call(client, "GET", "/x", upstream="metrics")


@pytest.mark.parametrize("kind", ["echo_auth_json", "echo_auth_text"])
async def test_credentials_never_reach_error_messages(
    make_client: ClientFactory, key: str, kind: str
) -> None:
    client = make_client(headers={"Authorization": f"Bearer {SECRET}"}, max_attempts=2)
    with pytest.raises(UpstreamError) as caught:
        await call(
            client, "GET", f"/fail/{key}", upstream="openai", params={"status": 502, "kind": kind}
        )
    assert SECRET not in caught.value.message
    assert SECRET not in str(caught.value)
    assert "[redacted]" in caught.value.message


async def test_query_keys_never_reach_error_messages(closed_port: str) -> None:
    client = create_client(closed_port, timeout=1.0, policy=RetryPolicy(max_attempts=1))
    async with client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await call(client, "GET", "/v1beta/models", upstream="gemini", params={"key": SECRET})
    assert SECRET not in str(caught.value)


def test_raise_for_upstream_passes_success_and_unread_bodies() -> None:
    raise_for_upstream(httpx.Response(204), "metrics")
    with pytest.raises(UpstreamUnavailable, match=r"^x answered 503: Service Unavailable$"):
        raise_for_upstream(httpx.Response(503, stream=httpx.ByteStream(b"unread")), "x")


# --- the policy and the factory on their own ---------------------------------------------------


def test_backoff_stays_within_full_jitter_bounds() -> None:
    policy = RetryPolicy(base_delay=0.5, multiplier=2.0, max_delay=30.0)
    for attempt in range(1, 50):
        ceiling = min(30.0, 0.5 * 2.0 ** (attempt - 1))
        assert all(0.0 <= policy.backoff(attempt) <= ceiling for _ in range(50))


def test_backoff_without_jitter_is_the_ceiling_and_never_overflows() -> None:
    policy = RetryPolicy(jitter="none", base_delay=1.0, multiplier=10.0, max_delay=30.0)
    assert [policy.backoff(n) for n in (1, 2, 3)] == [1.0, 10.0, 30.0]
    assert policy.backoff(10_000) == 30.0


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="multiplier"):
        RetryPolicy(multiplier=0.5)


def test_any_server_error_is_retryable_by_default() -> None:
    assert RetryPolicy().should_retry_status(599)
    assert not RetryPolicy(retry_any_server_error=False).should_retry_status(599)
    assert not RetryPolicy().should_retry_status(404)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: go now
        ("-1", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now=now) == expected


def test_create_client_demands_a_timeout() -> None:
    timeout = inspect.signature(create_client).parameters["timeout"]
    assert timeout.default is inspect.Parameter.empty
    assert timeout.kind is inspect.Parameter.KEYWORD_ONLY


async def test_create_client_sets_base_url_headers_and_timeout() -> None:
    client = create_client(
        "http://judge:8000", timeout=httpx.Timeout(120.0, connect=5.0), headers={"X-Api": "k"}
    )
    async with client:
        assert client.base_url == httpx.URL("http://judge:8000")
        assert client.headers["X-Api"] == "k"
        assert client.timeout == httpx.Timeout(120.0, connect=5.0)
        assert isinstance(client._transport, RetryingTransport)
