"""The retry policy and transport, over real HTTP to a uvicorn server on loopback.

Sleeps are injected and recorded, so the retry schedule is asserted exactly and runs fast.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.common.http_upstream import ClientFactory, Recorder, Upstream

from harmrank.common.errors import (
    UpstreamUnavailable,
)
from harmrank.common.http import (
    RetryingTransport,
    RetryPolicy,
    call,
    parse_retry_after,
)

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
