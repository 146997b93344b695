"""Failed annotator sign-ins are limited per client address: 429 with Retry-After."""

from __future__ import annotations

import httpx
from tests.gateway.annotation.conftest import calm_items, invite, seed_dataset
from tests.gateway.hardening.conftest import MakeGateway
from tests.gateway.runs.helpers import Sessions

from harmrank.gateway.annotation.sign_in_limit import SignInLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_slides_and_clients_are_counted_apart() -> None:
    clock = Clock()
    limiter = SignInLimiter(attempts=3, window_seconds=60, clock=clock)
    for second in (0, 10, 20):
        clock.now = 1000 + second
        assert limiter.retry_after("a") is None
        limiter.failed("a")
    assert limiter.retry_after("a") == 40  # the first failure leaves the window at 1060
    assert limiter.retry_after("b") is None
    clock.now = 1060
    assert limiter.retry_after("a") is None  # one failure left the window
    limiter.failed("a")
    assert limiter.retry_after("a") == 10


async def test_guessing_tokens_is_refused_after_the_limit(
    seeded: Sessions, make_gateway: MakeGateway
) -> None:
    url = make_gateway(sign_in_attempts=3, sign_in_window_seconds=60)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await seed_dataset(client, seeded, calm_items(2))
        [token] = await invite(client)
        for guess in range(3):
            wrong = {"name": "ann", "token": f"guess-{guess}-0123456789abcdef"}
            answer = await client.post("/annotate/api/session", json=wrong)
            assert answer.status_code == 403, answer.text
        refused = await client.post("/annotate/api/session", json=wrong)
        assert refused.status_code == 429
        assert refused.json()["error_type"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Refused before the token is looked at: even the right one waits.
        right = await client.post("/annotate/api/session", json={"name": "ann", "token": token})
        assert right.status_code == 429


async def test_successful_sign_ins_are_not_counted(
    seeded: Sessions, make_gateway: MakeGateway
) -> None:
    url = make_gateway(sign_in_attempts=2)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await seed_dataset(client, seeded, calm_items(2))
        [token] = await invite(client)
        for _ in range(4):
            again = await client.post("/annotate/api/session", json={"name": "ann", "token": token})
            assert again.status_code == 200, again.text
