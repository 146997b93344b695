"""The retry policy of every call between services: :class:`RetryingTransport` under the
clients of :func:`harmrank.common.http.create_client`.

It retries 408/409/429/5xx, connect errors, timeouts and dropped connections with capped
exponential backoff and full jitter, honouring ``Retry-After``. Decisions worth knowing:

- Every method is retried, POST included: judge and generator calls are POSTs, and the gateway
  stores results under natural unique keys, so a repeated call never duplicates a result row.
- Only requests whose body is in memory are retried (``json=``, ``data=``, ``content=bytes`` —
  httpx reads those eagerly). A streaming or multipart body cannot be replayed safely, so such a
  request gets exactly one attempt. Streaming *responses* are fine: the retry decision looks
  only at the status line and headers.
- ``Retry-After`` (delta-seconds or HTTP-date) replaces the backoff delay. One longer than
  ``max_delay`` means the upstream will not be ready within our budget: the transport gives up
  at once and returns that response (``call`` maps it to 503 with "retry after N s") rather than
  sleeping past its budget or hammering the upstream before it said it would be back.
- An upstream that says when to come back in its error *body* instead (Google's APIs put a
  ``google.rpc.RetryInfo`` there and send no header) gets the same treatment through the
  policy's ``body_delay``, which reads the small error body of a retryable answer.
- A request may carry a :class:`CallBudget` (``extensions={BUDGET_EXTENSION: budget}``): every
  attempt takes one call from it, and the retries stop when it is spent, so one judgment or
  generation (turns, retries and its own loops together) never makes more upstream calls than
  its budget, whatever the retry settings.
- The timeout applies per attempt; a call can take up to about
  ``max_attempts * timeout + (max_attempts - 1) * max_delay`` in the worst case.
"""

from __future__ import annotations

import random as _random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

import anyio
import httpx

from harmrank.common.errors import CallBudgetSpent

OnRetry = Callable[[int, str, float], None]
"""Called before each retry with (number of the attempt that failed, reason, delay in s).

Reasons: ``status_<code>``, ``connect_error``, ``timeout``, ``network_error`` — a small, fixed
set, fit to be a Prometheus label.
"""

DEFAULT_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
BUDGET_EXTENSION = "harmrank.call_budget"


class CallBudget:
    """The upstream calls one unit of work (a judgment, a generation) may make in all."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a call budget allows at least one call")
        self.limit = limit
        self.used = 0

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    def take(self) -> None:
        """Count one call; refuse it when the budget is spent."""
        if self.used >= self.limit:
            raise CallBudgetSpent(f"all {self.limit} upstream calls of the budget were used")
        self.used += 1


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry a downstream call and how long to wait first."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: Literal["full", "none"] = "full"
    # 409 is here because our conflicts are transient (a lease or row being written by a peer).
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    retry_any_server_error: bool = True
    retry_on_connect_errors: bool = True
    retry_on_timeouts: bool = True
    # A connection dropped mid-exchange (often a keep-alive connection the server closed).
    retry_on_network_errors: bool = True
    # The delay an upstream states in a retryable answer's body, when it sends no Retry-After.
    body_delay: Callable[[bytes], float | None] | None = field(default=None, compare=False)
    # Injected by tests; not part of the policy's identity.
    sleep: Callable[[float], Awaitable[None]] = field(default=anyio.sleep, compare=False)
    random: Callable[[], float] = field(default=_random.random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")
        if self.jitter not in ("full", "none"):
            raise ValueError(f"unknown jitter {self.jitter!r}")

    def should_retry_status(self, status_code: int) -> bool:
        if status_code in self.retry_statuses:
            return True
        return self.retry_any_server_error and 500 <= status_code <= 599

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt number ``attempt`` (1-based): full jitter under a cap."""
        try:
            ceiling = min(self.max_delay, self.base_delay * self.multiplier ** (attempt - 1))
        except OverflowError:
            ceiling = self.max_delay
        return ceiling * self.random() if self.jitter == "full" else ceiling

    def error_reason(self, exc: httpx.TransportError) -> str | None:
        """The retry reason for a transport error, or None when it must not be retried."""
        if isinstance(exc, httpx.TimeoutException):
            return "timeout" if self.retry_on_timeouts else None
        if isinstance(exc, httpx.ConnectError):
            return "connect_error" if self.retry_on_connect_errors else None
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            return "network_error" if self.retry_on_network_errors else None
        return None


_DELTA_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait for a ``Retry-After`` (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT, whatever the sender wrote
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _is_replayable(request: httpx.Request) -> bool:
    try:
        request.content  # noqa: B018 - raises when the body is a stream not held in memory
    except httpx.RequestNotRead:
        return False
    return True


async def _discard(response: httpx.Response) -> None:
    # Draining the (small) error body lets the connection go back to the pool.
    try:
        await response.aread()
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()


class RetryingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport so that every request sent through it follows a :class:`RetryPolicy`."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        policy: RetryPolicy | None = None,
        *,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self.on_retry = on_retry

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        max_attempts = self.policy.max_attempts if _is_replayable(request) else 1
        budget = request.extensions.get(BUDGET_EXTENSION)
        for attempt in range(1, max_attempts + 1):
            if budget is not None:
                budget.take()
            last = attempt == max_attempts or (budget is not None and budget.remaining == 0)
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError as exc:
                reason = None if last else self.policy.error_reason(exc)
                if reason is None:
                    raise
                delay = self.policy.backoff(attempt)
            else:
                plan = None if last else await self._plan_for_response(response, attempt)
                if plan is None:
                    return response
                reason, delay = plan
                await _discard(response)
            await self._wait(attempt, reason, delay)
        raise AssertionError("unreachable: the last attempt always returns or raises")

    async def _plan_for_response(
        self, response: httpx.Response, attempt: int
    ) -> tuple[str, float] | None:
        if not self.policy.should_retry_status(response.status_code):
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=time.time())
        if retry_after is None and self.policy.body_delay is not None:
            # Read (and so buffer) the body: an error body is small, and the caller still gets
            # it whole when this turns out to be the answer to return.
            try:
                retry_after = self.policy.body_delay(await response.aread())
            except httpx.HTTPError:
                retry_after = None  # a body we cannot read states nothing: back off
        if retry_after is None:
            delay = self.policy.backoff(attempt)
        elif retry_after > self.policy.max_delay:
            return None  # see the module docstring: give up rather than wait past our budget
        else:
            delay = retry_after
        return f"status_{response.status_code}", delay

    async def _wait(self, attempt: int, reason: str, delay: float) -> None:
        if self.on_retry is not None:
            self.on_retry(attempt, reason, delay)
        await self.policy.sleep(delay)

    async def aclose(self) -> None:
        await self.inner.aclose()
