"""The token buckets and the limited transport, on a fake clock."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from harmrank.judge.limiter import LimitedTransport, ProviderLimiter, TokenBucket
from harmrank.judge.settings import ProviderLimits


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_spaces_reservations_and_goes_into_debt() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, capacity=1.0, clock=clock)
    waits = [bucket.reserve(1) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])
    clock.now = 10.0
    assert bucket.reserve(1) == 0.0  # refilled, but never above capacity
    assert bucket.reserve(1) > 0.0


def test_give_back_refunds_an_over_estimate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100.0, capacity=100.0, clock=clock)
    assert bucket.reserve(300) == 2.0
    bucket.give_back(200)
    assert bucket.reserve(0) == 0.0


async def test_limited_transport_keeps_the_request_rate() -> None:
    limits = ProviderLimits(requests_per_minute=1200, safety_margin=0.0, max_concurrency=4)
    transport = LimitedTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), ProviderLimiter(limits)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        started = time.perf_counter()
        await asyncio.gather(*(client.get("/") for _ in range(11)))
        elapsed = time.perf_counter() - started
    assert 0.45 <= elapsed < 1.0  # 20/s: ten gaps of 50 ms after the first request


async def test_token_budget_waits_for_the_estimate_and_settles_to_usage() -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    limits = ProviderLimits(tokens_per_minute=6000, safety_margin=0.0)  # 100 tokens/s
    limiter = ProviderLimiter(limits, sleep=record)
    async with limiter.slot(100):
        pass
    async with limiter.slot(300):  # 300 more than the bucket holds: 3 s of debt
        pass
    assert waits == [pytest.approx(3.0, abs=0.05)]
    limiter.settle(estimated_tokens=300, actual_tokens=0)  # the call used nothing: debt repaid
    async with limiter.slot(0):  # without the refund this would wait 3 s more
        pass
    assert len(waits) == 1
