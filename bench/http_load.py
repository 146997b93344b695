"""A light open-loop HTTP/1.1 load generator for the gateway benchmarks.

The load generator shares the machine's cores with the server it measures, so its own CPU per
request is taken from the server: httpx spends about a millisecond of CPU on a request, this
client (keep-alive connections over asyncio streams, under uvloop) a small fraction of that.
What it measures is the same:

- **Open loop.** Request i is due at ``start + i / rate`` whatever became of the ones before;
  its latency counts from when it was due (waiting for a connection included), so a slow
  server cannot slow the arrivals down and hide its own queueing (coordinated omission).
- **Errors** are counted, never dropped: an answer of 400 or more by status, a failed or
  timed-out request by exception type. A failed request's latency is not in the percentiles.
- A request on a kept-alive connection that the server closed meanwhile (it never received
  it) is sent again once on a new connection, as httpx and browsers do; connections idle for
  longer than the server keeps them are not reused.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 30.0
IDLE_SECONDS = 4.0


@dataclass(frozen=True)
class Request:
    """One kind of request of a mix, named for the figures."""

    name: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Callable[[int], tuple[str, bytes]] | None = None
    """For request i: (content type, body)."""


@dataclass
class Outcome:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0

    def all_latencies(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]


class _Stale(Exception):
    """The server had closed a kept-alive connection before the request reached it."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = False
        self.idle_since = 0.0

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        reused, self.used = self.used, True
        self.writer.write(raw)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if reused and not exc.partial:
                raise _Stale from exc
            raise
        status = int(head[9:12])
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        body = await (self._chunked() if chunked else self.reader.readexactly(length))
        return status, body

    async def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await self.reader.readexactly(size + 2))
            if size == 0:
                return b"".join(parts)

    def close(self) -> None:
        self.writer.close()


class Client:
    """Keep-alive connections to one server, at most ``max_connections`` at once."""

    def __init__(self, base_url: str, max_connections: int = 500) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(max_connections)

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        async with self.slots:
            connection = self._idle_connection() or await self._connect()
            try:
                answer = await connection.exchange(raw)
            except _Stale:
                connection.close()
                connection = await self._connect()
                answer = await self._exchange_on_new(connection, raw)
            except BaseException:
                connection.close()
                raise
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
            return answer

    @staticmethod
    async def _exchange_on_new(connection: _Connection, raw: bytes) -> tuple[int, bytes]:
        try:
            return await connection.exchange(raw)
        except BaseException:
            connection.close()
            raise

    def _idle_connection(self) -> _Connection | None:
        """The most recently used idle connection; ones idle for longer than the server keeps
        them (uvicorn: 5 s) are closed instead."""
        while self.idle:
            connection = self.idle.pop()
            if time.monotonic() - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Connection(reader, writer)

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


def multipart(
    fields: dict[str, str], filename: str, content_type: str, data: bytes
) -> tuple[str, bytes]:
    """A multipart/form-data body: the text fields, then one file named ``file``."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


async def open_loop(
    base_url: str, mix: Sequence[Request], rate: float, seconds: float, *, first: int = 0
) -> Outcome:
    """Send ``rate`` requests a second for ``seconds``, request i of kind ``mix[i % len(mix)]``
    (``first`` offsets i, so two phases never send the same body)."""
    client = Client(base_url)
    outcome = Outcome(latencies={r.name: [] for r in mix})

    async def one(i: int, due: float) -> None:
        kind = mix[i % len(mix)]
        headers = dict(kind.headers)
        body = b""
        if kind.body is not None:
            headers["Content-Type"], body = kind.body(first + i)
        try:
            status, _ = await asyncio.wait_for(
                client.request(kind.method, kind.path, headers, body), TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            outcome.errors[f"{kind.name}: {type(exc).__name__}"] += 1
            return
        if status >= 400:
            outcome.errors[f"{kind.name}: HTTP {status}"] += 1
            return
        outcome.latencies[kind.name].append(time.perf_counter() - due)

    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
        outcome.sent += 1
    await asyncio.gather(*tasks)
    client.close()
    return outcome


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) in milliseconds; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the benchmark's main coroutine under uvloop (what uvicorn serves with)."""
    import uvloop

    uvloop.run(main())
