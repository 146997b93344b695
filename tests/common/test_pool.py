"""The clients built by ``create_client`` keep every connection alive: a second burst of calls
as large as the first reuses the first burst's connections instead of opening new ones."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send
from tests.conftest import ServeApp

from harmrank.common.http import create_client, pooled_transport

BURST = 30  # above httpx's default of 20 idle connections kept


class PortRecorder:
    """Answers after a pause (so a burst is in flight at once), noting each caller's port."""

    def __init__(self) -> None:
        self.ports: set[int] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.ports.add(scope["client"][1])
        await asyncio.sleep(0.3)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _two_bursts(url: str, **options: object) -> None:
    async with create_client(url, timeout=10, **options) as client:  # type: ignore[arg-type]
        for _ in range(2):
            answers = await asyncio.gather(*(client.get("/") for _ in range(BURST)))
            assert {a.status_code for a in answers} == {200}


async def test_the_default_pool_reuses_every_connection(serve_app: ServeApp) -> None:
    recorder = PortRecorder()
    await _two_bursts(serve_app(recorder))
    assert len(recorder.ports) == BURST


async def test_a_pool_sized_to_the_calls_in_flight_reuses_them(serve_app: ServeApp) -> None:
    recorder = PortRecorder()
    await _two_bursts(serve_app(recorder), transport=pooled_transport(BURST))
    assert len(recorder.ports) == BURST


async def test_a_smaller_pool_makes_calls_wait_rather_than_open_more(serve_app: ServeApp) -> None:
    recorder = PortRecorder()
    await _two_bursts(serve_app(recorder), transport=pooled_transport(10))
    assert len(recorder.ports) == 10
