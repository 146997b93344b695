"""The aiohttp transport under the pooled clients sends exactly the request httpx built, hands
back the answer as httpx would, and fails with the httpx exceptions that the retry policy and
the error mapping act on."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest

from harmrank.common import aiohttp_transport
from harmrank.common.aiohttp_transport import AiohttpTransport

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[list[str], bytes]:
    """The header lines and the body (by Content-Length, or chunked) of one request."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")[:-2]
    fields = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in head[1:]}
    if "content-length" in fields:
        return head, await reader.readexactly(int(fields["content-length"]))
    body = b""
    while fields.get("transfer-encoding") == "chunked":
        size = int((await reader.readline()).strip(), 16)
        body += (await reader.readexactly(size + 2))[:-2]
        if size == 0:
            break
    return head, body


@contextlib.asynccontextmanager
async def _serve(reply: Reply) -> AsyncIterator[str]:
    """A raw HTTP server on loopback; every connection's handler has finished on leaving."""
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await reply(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    await asyncio.wait_for(asyncio.gather(*handlers), 5)


async def _send(url: str, transport: AiohttpTransport, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport, timeout=2.0) as client:
        return await client.post(url + "/x", **kwargs)  # type: ignore[arg-type]


async def test_sends_what_httpx_built_and_returns_the_answer_as_httpx_would() -> None:
    seen: list[tuple[list[str], bytes]] = []

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _read_request(reader))
        body = gzip.compress(json.dumps({"ok": True}).encode())
        writer.write(
            b"HTTP/1.1 201 Made\r\nContent-Encoding: gzip\r\nX-Twice: a\r\nX-Twice: b\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        await writer.drain()

    async with _serve(reply) as url, httpx.AsyncClient(transport=AiohttpTransport()) as client:
        built = client.build_request("POST", url + "/x", json={"q": 1}, headers={"X-Id": "7"})
        answer = await client.send(built)
    assert (answer.status_code, answer.reason_phrase, answer.http_version) == (
        201,
        "Made",
        "HTTP/1.1",
    )
    assert answer.json() == {"ok": True}  # httpx decoded the gzip body: aiohttp left it alone
    assert answer.headers.get_list("x-twice") == ["a", "b"]
    head, body = seen[0]
    assert head[0] == "POST /x HTTP/1.1"
    assert sorted(line.lower() for line in head[1:]) == sorted(
        f"{name}: {value}".lower() for name, value in built.headers.multi_items()
    )
    assert json.loads(body) == {"q": 1}


async def test_a_streamed_body_arrives_whole_and_no_cookie_is_kept() -> None:
    seen: list[tuple[list[str], bytes]] = []

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                seen.append(await _read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"two ", b"three"):
            yield part

    transport = AiohttpTransport()
    async with _serve(reply) as url, transport:
        for content in (parts(), b"again"):
            request = httpx.Request("POST", url + "/x", content=content)
            answer = await transport.handle_async_request(request)
            await answer.aread()
    assert [body for _, body in seen] == [b"one two three", b"again"]
    assert "Transfer-Encoding: chunked" in seen[0][0]
    assert not any(line.lower().startswith("cookie") for line in seen[1][0])


async def test_a_body_over_a_mebibyte_arrives_whole_without_a_warning() -> None:
    # aiohttp warns (an error here) when handed bytes over 1 MiB: the transport hands it
    # them as a stream it writes a piece at a time.
    seen: list[tuple[list[str], bytes]] = []

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    large = bytes(range(256)) * (3 * 4096 + 1)  # 3 MiB and 256 bytes
    async with _serve(reply) as url:
        answer = await _send(url, AiohttpTransport(), content=large)
    assert answer.status_code == 200
    head, body = seen[0]
    assert body == large
    assert f"content-length: {len(large)}" in [line.lower() for line in head]


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.close()  # no answer at all


async def _cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
    await writer.drain()
    writer.close()


async def _malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()
    writer.close()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await reader.read()  # until the client gives up and closes the connection


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (_refuse, httpx.RemoteProtocolError),
        (_cut_short, httpx.RemoteProtocolError),
        (_malformed, httpx.RemoteProtocolError),
        (_silent, httpx.ReadTimeout),
    ],
)
async def test_a_failed_exchange_raises_the_httpx_error(
    reply: Reply, expected: type[httpx.TransportError]
) -> None:
    transport = AiohttpTransport()
    # Only the read is short: a connect on a loaded machine can take longer than 0.3 s, and a
    # ConnectTimeout would be the wrong error for the right reason.
    timeout = httpx.Timeout(10.0, read=0.3)
    async with (
        _serve(reply) as url,
        httpx.AsyncClient(transport=transport, timeout=timeout) as client,
    ):
        with pytest.raises(expected):
            await client.post(url + "/x", content=b"body")


async def test_a_port_nobody_listens_on_is_a_connect_error() -> None:
    async with _serve(_refuse) as url:
        pass
    with pytest.raises(httpx.ConnectError):
        await _send(url, AiohttpTransport())


async def _answer_empty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


@pytest.fixture
def contexts_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ssl.SSLContext]]:
    """Every TLS context httpx makes for the transports from here on, none cached before."""
    made: list[ssl.SSLContext] = []

    def create_ssl_context() -> ssl.SSLContext:
        made.append(ssl.create_default_context())
        return made[-1]

    monkeypatch.setattr(httpx, "create_ssl_context", create_ssl_context)
    aiohttp_transport._certifi_context.cache_clear()
    try:
        yield made
    finally:
        aiohttp_transport._certifi_context.cache_clear()


async def test_every_transport_shares_one_tls_context(
    contexts_made: list[ssl.SSLContext],
) -> None:
    """Loading certifi's roots costs ~20 ms; the process does it once, not per transport."""
    for _ in range(2):
        async with _serve(_answer_empty) as url:
            await _send(url, AiohttpTransport())
    assert len(contexts_made) == 1


def test_the_tls_context_is_made_with_the_transport(contexts_made: list[ssl.SSLContext]) -> None:
    """At start-up, where the lifespans make the clients: made at the first request, it stalled
    the event loop ~20 ms in the first call of a run, with every call in flight waiting."""
    AiohttpTransport()
    assert len(contexts_made) == 1
