"""A limit on failed sign-ins per client address, so invitation tokens cannot be guessed fast.

A sliding window: a client with ``attempts`` failed sign-ins within the last ``window_seconds``
is refused (429, ``Retry-After`` = seconds until its oldest failure leaves the window) before
its token is even checked. Successful sign-ins do not count. The count is per gateway process:
with N replicas a client gets at most N times the limit, still far from guessing a token.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from fastapi import Request

MAX_CLIENTS = 10_000
"""Clients remembered at once: the oldest is forgotten first, so memory stays bounded."""


class SignInLimiter:
    def __init__(
        self,
        attempts: int = 10,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int | None:
        """Seconds the client must wait before trying again; None when it may try now."""
        failures = self._recent(client)
        if len(failures) < self.attempts:
            return None
        return max(1, math.ceil(failures[0] + self.window - self.clock()))

    def failed(self, client: str) -> None:
        failures = self._recent(client)
        failures.append(self.clock())
        self._failures.pop(client, None)  # re-inserted last: dicts keep insertion order
        self._failures[client] = failures
        while len(self._failures) > MAX_CLIENTS:
            self._failures.pop(next(iter(self._failures)))

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client, deque())
        cutoff = self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures


async def sign_in_limiter(request: Request) -> SignInLimiter:
    """The app's limiter (``create_app`` sets it from the settings; else the defaults)."""
    state = request.app.state
    if getattr(state, "sign_in_limiter", None) is None:
        state.sign_in_limiter = SignInLimiter()
    limiter: SignInLimiter = state.sign_in_limiter
    return limiter


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
