"""The transport under every pooled client: httpx's API on aiohttp's connection pool.

httpx's own transport (httpcore 1.0.9 on anyio) cost 1.3–4 ms of CPU per request on the
2-core machine, most of it in a pool pass that scans every connection for every waiting
request (encode/httpcore#1035, unreleased) and in anyio's socket writes; aiohttp's pool hands
out a free connection in O(1) and parses HTTP in C. With httpx's client on top, a request costs
about a quarter of what it did (``bench/http_client_cost.py``). Callers keep httpx's API, and
:mod:`harmrank.common.retry` and :mod:`harmrank.common.upstream_errors` keep seeing httpx's
exceptions: this module maps aiohttp's onto the ones httpx raises for the same failure.

aiohttp adds nothing of its own: no cookies (httpx keeps them), no default headers, no
decompression (httpx decodes), no redirects, no proxies from the environment (httpx mounts
those itself).
"""

from __future__ import annotations

import contextlib
import functools
import io
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx
from aiohttp.payload import TOO_LARGE_BYTES_BODY
from yarl import URL

# aiohttp would add these when the request lacks them; httpx already sent what it meant to.
_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")

# Most specific first: the first match names the httpx exception.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake
    # A keep-alive connection the server closed, or a reply cut short or malformed: httpcore
    # reports all of these as protocol errors.
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientConnectionError, httpx.ReadError),  # reset or broken mid-exchange
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
)


@functools.cache
def _certifi_context() -> ssl.SSLContext:
    """httpx's verification (certifi's roots), not the system's; one context for every
    transport of the process: loading the roots takes ~20 ms of CPU."""
    return httpx.create_ssl_context()


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except aiohttp.ClientError as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc) or type(exc).__name__) from exc
        raise httpx.TransportError(str(exc) or type(exc).__name__) from exc


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # A fully read body has already given its connection back; one not fully read
        # closes it, as httpcore does.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx's requests over one aiohttp session of up to ``max_connections`` (None:
    no limit), each kept alive for ``keepalive_expiry`` seconds once idle (httpx's 5 s)."""

    def __init__(
        self,
        max_connections: int | None = 100,
        *,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        # Made with the transport (the clients are made at start-up, in the lifespans), not at
        # the first request: there it stalled every process's event loop ~20 ms in its first
        # call of a run, and at the start of a run every call in flight waited for it.
        self._ssl_context = ssl_context or _certifi_context()
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        # Opened on the first request: an aiohttp session belongs to the running event loop.
        connector = aiohttp.TCPConnector(
            limit=self.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self.keepalive_expiry,
            ssl=self._ssl_context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_AUTO_HEADERS,
            auto_decompress=False,
            trust_env=False,
        )
        return self._session

    def _timeout(self, timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
        connect, read, pool = (timeouts.get(k) for k in ("connect", "read", "pool"))
        key = (connect, read, pool)
        if (timeout := self._timeouts.get(key)) is None:
            # aiohttp's `connect` covers waiting for a free connection and opening one; its
            # `sock_connect` bounds the opening alone. aiohttp has no write timeout.
            waiting = None if pool is None else pool + (connect or 0.0)
            timeout = aiohttp.ClientTimeout(connect=waiting, sock_connect=connect, sock_read=read)
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        headers = request.headers.multi_items()
        body: Any
        try:
            body = request.content or None
            if body is not None and len(body) > TOO_LARGE_BYTES_BODY:
                # aiohttp writes bytes in one piece (and warns past 1 MiB); a BytesIO, which
                # shares the bytes, it writes 64 KiB at a time with the event loop free in
                # between: a run's report request (20 MB at 200,000 prompts) does not hold up
                # the worker's other tasks.
                body = io.BytesIO(body)
        except httpx.RequestNotRead:
            body = request.stream  # sent as it comes; aiohttp does the chunked framing itself
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        with _httpx_errors():
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
            )
        version = response.version or aiohttp.HttpVersion11
        extensions = {"http_version": f"HTTP/{version.major}.{version.minor}".encode()}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_ResponseStream(response),
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
