"""The one way a harmrank service calls another HTTP service.

- :func:`create_client` builds the long-lived ``httpx.AsyncClient`` for one downstream: an
  explicit timeout (httpx's 5 s default is wrong for LLM calls), the retry policy as a transport,
  and the current ``X-Request-Id`` on every request.
- :class:`RetryingTransport` retries 408/409/429/5xx, connect errors, timeouts and dropped
  connections with capped exponential backoff and full jitter, honouring ``Retry-After``.
- :func:`call` sends a request and turns a final failure into the common upstream errors
  (502/503/504 with the upstream's reason), so no route ever answers a bare 500 for it.

Decisions worth knowing:

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

import json
import math
import random as _random
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import anyio
import httpx

from harmrank.common.errors import (
    CallBudgetSpent,
    HarmrankError,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from harmrank.common.request_id import REQUEST_ID_HEADER, current_request_id
from harmrank.common.tracing import instrument_client

OnRetry = Callable[[int, str, float], None]
"""Called before each retry with (number of the attempt that failed, reason, delay in s).

Reasons: ``status_<code>``, ``connect_error``, ``timeout``, ``network_error`` — a small, fixed
set, fit to be a Prometheus label.
"""

DEFAULT_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_REASON_CHARS = 200
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


async def _add_request_id(request: httpx.Request) -> None:
    # An id the caller set on purpose wins over the one of the request being served.
    request_id = current_request_id()
    if request_id is not None and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def pooled_transport(max_connections: int | None = 100) -> httpx.AsyncHTTPTransport:
    """A connection pool that keeps every connection it opens alive, up to ``max_connections``
    (size it to the calls in flight; None: no limit). httpx's default pool keeps only 20 idle
    connections and closes the others, so with more calls than that in flight each burst paid
    new TCP connections again."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=None)
    return httpx.AsyncHTTPTransport(limits=limits)


def create_client(
    base_url: str,
    *,
    timeout: httpx.Timeout | float,
    policy: RetryPolicy | None = None,
    headers: Mapping[str, str] | None = None,
    on_retry: OnRetry | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The long-lived client for one downstream; build it in the app's lifespan, close it there.

    ``transport`` is the inner transport the retries wrap: :func:`pooled_transport` (the
    default, 100 connections) sized to the calls in flight, or ``httpx.ASGITransport(app)`` in
    tests.
    """
    inner = transport if transport is not None else pooled_transport()
    client = httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        headers=headers,
        transport=RetryingTransport(inner, policy, on_retry=on_retry),
        event_hooks={"request": [_add_request_id]},
    )
    instrument_client(client)  # traceparent on every call, when tracing is on
    return client


# Headers and query parameters that carry credentials; an upstream that echoes one back in its
# error body must not get it into our error message (which reaches clients and logs).
_SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
)
_SECRET_PARAMS = ("key", "api_key", "apikey", "access_token", "token")
_MIN_SECRET_CHARS = 4


def _secrets_of(request: httpx.Request | None) -> list[str]:
    if request is None:
        return []
    values = [v for name in _SECRET_HEADERS for v in request.headers.get_list(name)]
    values += [v for name in _SECRET_PARAMS for v in request.url.params.get_list(name)]
    # "Bearer sk-…": the token may come back without its scheme.
    values += [v.partition(" ")[2] for v in values]
    secrets = {v.strip() for v in values if len(v.strip()) >= _MIN_SECRET_CHARS}
    return sorted(secrets, key=len, reverse=True)


def _redact(text: str, request: httpx.Request | None) -> str:
    for secret in _secrets_of(request):
        text = text.replace(secret, "[redacted]")
    return text


def _find_message(payload: object) -> str | None:
    """The human reason in the error bodies we meet (TGI, OpenAI, Anthropic, Gemini, FastAPI)."""
    if isinstance(payload, str):
        return payload or None
    if isinstance(payload, list):
        return _find_message(payload[0]) if payload else None
    if isinstance(payload, dict):
        for key in ("error", "message", "detail", "msg"):
            found = _find_message(payload.get(key))
            if found:
                return found
    return None


def _upstream_reason(response: httpx.Response) -> str:
    try:
        text = response.text
    except httpx.ResponseNotRead:
        return response.reason_phrase
    try:
        found = _find_message(json.loads(text))
    except ValueError:
        found = None
    return (found or text).strip() or response.reason_phrase


def _request_of(response: httpx.Response) -> httpx.Request | None:
    try:
        return response.request
    except RuntimeError:
        return None


StatusErrors = Mapping[int, type[HarmrankError]]
"""Per status, the error a final answer raises, for an upstream whose statuses say more (TGI's
424 "failed while generating"); statuses not listed map as :func:`_error_class` says."""


def _error_class(status_code: int, statuses: StatusErrors) -> type[HarmrankError]:
    if status_code in statuses:
        return statuses[status_code]
    if status_code in (429, 503):
        return UpstreamUnavailable
    if status_code in (408, 504):
        return UpstreamTimeout
    if 400 <= status_code < 500 and status_code != 409:
        # Our request is wrong for the upstream: permanent (asking again pays for the same
        # refusal), and a bad gateway for our caller, never a 4xx of ours.
        return UpstreamRejected
    return UpstreamError


def _retry_after_note(response: httpx.Response) -> str:
    seconds = parse_retry_after(response.headers.get("Retry-After"), now=time.time())
    return "" if seconds is None else f"; retry after {math.ceil(seconds)} s"


def _upstream_type(response: httpx.Response) -> str | None:
    """The upstream's own ``error_type`` (TGI's and ours), when its body states one."""
    try:
        payload = json.loads(response.text)
    except (ValueError, httpx.ResponseNotRead):
        return None
    found = payload.get("error_type") if isinstance(payload, dict) else None
    return found if isinstance(found, str) else None


def raise_for_upstream(
    response: httpx.Response, upstream: str, statuses: StatusErrors | None = None
) -> None:
    """Raise the common error for a final error response (status >= 400); return otherwise.

    The message carries the upstream's own reason, with any credential the request carried
    redacted, and never the request's headers; the details name the upstream, its status and
    its own error type.
    """
    status = response.status_code
    if status < 400:
        return
    request = _request_of(response)
    reason = _redact(_upstream_reason(response), request)[:MAX_REASON_CHARS]
    message = f"{upstream} answered {status}: {reason}" + _retry_after_note(response)
    details: dict[str, Any] = {"upstream": upstream, "status": status}
    if (upstream_type := _upstream_type(response)) is not None:
        details["upstream_error_type"] = upstream_type
    raise _error_class(status, statuses or {})(message, details=[details])


def upstream_error_for(exc: httpx.RequestError, upstream: str) -> HarmrankError:
    """The common error for a request that got no answer. Only the exception's type is named:
    some exception texts hold the URL, and a URL may hold a key (Gemini's ``?key=``)."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{upstream} timed out ({kind})")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamUnavailable(f"{upstream} is unreachable ({kind})")
    return UpstreamError(f"{upstream} failed ({kind})")


async def call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    upstream: str,
    accept_statuses: Collection[int] = (),
    statuses: StatusErrors | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request (retried per the client's policy) and raise the common error on failure.

    ``upstream`` names the downstream in messages ("openai", "metrics"). Statuses listed in
    ``accept_statuses`` (say 404 on a lookup) are returned to the caller instead of raised;
    ``statuses`` maps others onto errors of the caller's choosing.
    """
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.RequestError as exc:
        raise upstream_error_for(exc, upstream) from exc
    if response.status_code not in accept_statuses:
        raise_for_upstream(response, upstream, statuses)
    return response
