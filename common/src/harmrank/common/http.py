"""The one way a harmrank service calls another HTTP service.

- :func:`create_client` builds the long-lived ``httpx.AsyncClient`` for one downstream: an
  explicit timeout (httpx's 5 s default is wrong for LLM calls), the retry policy as a transport
  (:mod:`harmrank.common.retry`), and the current ``X-Request-Id`` on every request.
- :func:`call` sends a request and turns a final failure into the common upstream errors
  (502/503/504 with the upstream's reason, :mod:`harmrank.common.upstream_errors`), so no route
  ever answers a bare 500 for it.

Callers import all of it from here; the two modules behind it are the transport's retries and
the error mapping, apart.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import httpx

from harmrank.common.aiohttp_transport import AiohttpTransport
from harmrank.common.request_id import REQUEST_ID_HEADER, current_request_id
from harmrank.common.retry import (
    BUDGET_EXTENSION,
    CallBudget,
    OnRetry,
    RetryingTransport,
    RetryPolicy,
    parse_retry_after,
)
from harmrank.common.tracing import instrument_client
from harmrank.common.upstream_errors import (
    StatusErrors,
    raise_for_upstream,
    upstream_error_for,
)

__all__ = [
    "BUDGET_EXTENSION",
    "CallBudget",
    "OnRetry",
    "RetryPolicy",
    "RetryingTransport",
    "StatusErrors",
    "call",
    "create_client",
    "parse_retry_after",
    "raise_for_upstream",
    "upstream_error_for",
]


async def _add_request_id(request: httpx.Request) -> None:
    # An id the caller set on purpose wins over the one of the request being served.
    request_id = current_request_id()
    if request_id is not None and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def pooled_transport(max_connections: int | None = 100) -> AiohttpTransport:
    """A connection pool that keeps every connection it opens alive, up to ``max_connections``
    (size it to the calls in flight; None: no limit), on aiohttp (see
    :mod:`harmrank.common.aiohttp_transport` for why). httpx's default pool keeps only 20 idle
    connections and closes the others, so with more calls than that in flight each burst paid
    new TCP connections again."""
    return AiohttpTransport(max_connections)


class _Client(httpx.AsyncClient):
    """httpx's client without two costs per request that a long-lived client for one
    downstream does not need:

    - cookies: httpx parses every response's headers into an ``email.message`` and builds a
      ``urllib`` request to look for ``Set-Cookie``. harmrank's calls authenticate by header,
      and a cookie one task's call received must not ride on every later call of every task;
    - merging the path with the base URL: parsed anew on every request, though a client calls
      the same few paths; each merged URL is kept (httpx's URLs are immutable);

    and without one reference cycle: httpx's response and the stream it wraps its body in
    (``BoundAsyncStream``) refer to each other, so every response, with its request, headers
    and the transport's response behind it (about 45 objects an exchange), was garbage only
    Python's cycle collector could free: most of what the services' and the worker's young
    collections found (``harmrank.common.heap``). Once the body is read, the response's
    stream is its bytes instead, and the whole exchange is freed by reference counting."""

    _KEPT_URLS = 64  # paths with ids in them must not grow the dict without end

    def __init__(self, **kwargs: Any) -> None:
        self._merged: dict[str, tuple[httpx.URL, httpx.URL]] = {}
        super().__init__(**kwargs)

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        if cookies:
            raise ValueError("harmrank's clients keep no cookies")

    def _merge_cookies(self, cookies: Any = None) -> Any:
        # Nothing to merge them with. httpx's own asks whether the client's jar is empty by
        # iterating it under its lock, on every request.
        return cookies

    async def send(
        self, request: httpx.Request, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        response = await super().send(request, stream=stream, **kwargs)
        if not stream:  # read and closed: nothing more comes from the wrapped stream
            response.stream = httpx.ByteStream(response.content)
        return response

    def _merge_url(self, url: httpx.URL | str) -> httpx.URL:
        if not isinstance(url, str):
            return super()._merge_url(url)
        kept = self._merged.get(url)
        if kept is not None and kept[0] is self.base_url:
            return kept[1]
        merged = super()._merge_url(url)
        if len(self._merged) < self._KEPT_URLS:
            self._merged[url] = (self.base_url, merged)
        return merged


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise ValueError("harmrank's clients keep no cookies")


_NO_COOKIES = _NoCookies()


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
    client = _Client(
        base_url=base_url,
        timeout=timeout,
        headers=headers,
        transport=RetryingTransport(inner, policy, on_retry=on_retry),
        event_hooks={"request": [_add_request_id]},
    )
    instrument_client(client)  # traceparent on every call, when tracing is on
    return client


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
