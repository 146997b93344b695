"""Client-side limits per provider: concurrency, requests per minute, tokens per minute.

The limiter sits in the HTTP transport *under* the retry layer, so every attempt — retries
included — waits for its slot: a retry can never be the request that breaks the limit.

Rates are token buckets in reservation form (as in Go's ``rate.Limiter``): a caller takes what
it needs at once, possibly into debt, and sleeps until the debt is paid. Reservations are made
without awaiting, so callers are served in arrival order and nothing is double-spent. The
request bucket holds one request, which spaces requests evenly (600/min = one per 100 ms)
instead of bursting at the start of a minute the way providers' own counters would punish.
Token use is not known until the answer arrives: a request reserves an estimate (prompt chars
/ 4 + max output tokens) and :meth:`ProviderLimiter.settle` corrects the bucket with the usage
reported.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx

from harmrank.judge.settings import ProviderLimits

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
TOKENS_EXTENSION = "harmrank_estimated_tokens"


class TokenBucket:
    """``rate`` units per second, holding at most ``capacity``; takes may go into debt."""

    def __init__(self, rate: float, capacity: float, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self.level = capacity
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def reserve(self, amount: float) -> float:
        """Take ``amount`` now; answer how long to wait before using it."""
        self._refill()
        self.level -= amount
        return max(0.0, -self.level / self.rate)

    def give_back(self, amount: float) -> None:
        """Return (or, when negative, take more of) what a reservation over-estimated."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class ProviderLimiter:
    """The limits of one limit group, shared by every judge in it."""

    def __init__(self, limits: ProviderLimits, *, sleep: Sleep = asyncio.sleep) -> None:
        keep = 1.0 - limits.safety_margin
        self.semaphore = asyncio.Semaphore(limits.max_concurrency)
        self.requests = _bucket(limits.requests_per_minute, keep, capacity=1.0)
        self.tokens = _bucket(limits.tokens_per_minute, keep, capacity=None)
        self.sleep = sleep

    @asynccontextmanager
    async def slot(self, estimated_tokens: int) -> AsyncIterator[None]:
        """Hold one concurrency slot, after waiting for the request and token budgets."""
        async with self.semaphore:
            wait = 0.0
            if self.requests is not None:
                wait = self.requests.reserve(1)
            if self.tokens is not None:
                wait = max(wait, self.tokens.reserve(estimated_tokens))
            if wait > 0:
                await self.sleep(wait)
            yield

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        if self.tokens is not None:
            self.tokens.give_back(estimated_tokens - actual_tokens)


def _bucket(per_minute: float | None, keep: float, capacity: float | None) -> TokenBucket | None:
    if per_minute is None:
        return None
    rate = per_minute * keep / 60.0
    # Tokens: one second's worth may go at once, so a burst never nears the minute's budget.
    return TokenBucket(rate, capacity if capacity is not None else max(rate, 1.0))


class LimitedTransport(httpx.AsyncBaseTransport):
    """Waits for the limiter before every attempt the retrying transport above it makes."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limiter: ProviderLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        estimate = int(request.extensions.get(TOKENS_EXTENSION, 0))
        async with self.limiter.slot(estimate):
            return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
