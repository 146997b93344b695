"""The client factory and the mapping of failed calls to the common errors, over real HTTP to
a uvicorn server on loopback.
"""

from __future__ import annotations

import gc
import inspect
import weakref

import httpx
import pytest
from tests.common.http_upstream import SECRET, ClientFactory, Upstream

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
    raise_for_upstream,
)
from harmrank.common.request_id import REQUEST_ID_HEADER, request_id_scope

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


async def test_a_read_answer_is_freed_without_the_garbage_collector(
    make_client: ClientFactory, key: str
) -> None:
    """No reference cycle per call (httpx's response and its stream held each other, and with
    them the aiohttp response): the collector's work grew with every call."""
    client = make_client()
    succeed = {"times": 0}
    await call(client, "GET", f"/flaky/{key}", upstream="metrics", params=succeed)  # pool warm
    gc.collect()
    gc.disable()
    try:
        response = await call(client, "GET", f"/flaky/{key}", upstream="metrics", params=succeed)
        assert response.json() == {"hits": 2}
        freed = weakref.ref(response)
        del response
        assert freed() is None
    finally:
        gc.enable()


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


async def test_clients_keep_no_cookies() -> None:
    """A cookie one call received is not sent with the next (the next task's) call."""
    sent: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"})

    transport = httpx.MockTransport(answer)
    async with create_client("http://up", timeout=5.0, transport=transport) as client:
        await client.get("/a")
        await client.get("/a", cookies=None)
        assert sent == [None, None]
        assert not client.cookies
        with pytest.raises(ValueError, match="no cookies"):
            client.cookies = {"session": "abc"}


async def test_paths_merge_with_the_base_url_even_after_it_changes() -> None:
    called: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        called.append(str(request.url))
        return httpx.Response(200)

    transport = httpx.MockTransport(answer)
    async with create_client("http://up/api", timeout=5.0, transport=transport) as client:
        for _ in range(2):
            await client.get("/v1/x")
        await client.get("v1/y?q=1")
        client.base_url = httpx.URL("http://other:81/")
        await client.get("/v1/x")
        await client.get("http://absolute/z")
    assert called == [
        "http://up/api/v1/x",
        "http://up/api/v1/x",
        "http://up/api/v1/y?q=1",
        "http://other:81/v1/x",
        "http://absolute/z",
    ]
