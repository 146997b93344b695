"""Failure injection in front of a TGI stand-in: overload answers and calls that hang.

Of every 20 generation calls (a seeded shuffle, so the fractions are exact and the sequence
repeatable), 4 are answered 429 ``overloaded`` or 503 ``unavailable`` in TGI's error body (20%)
and 1 is held past the client's read timeout before it is answered (5%); the rest reach the
stand-in. Probes (``/info``, ``/health``) pass untouched.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

GENERATION_PATHS = frozenset({"/generate", "/v1/chat/completions"})
BLOCK = ["pass"] * 15 + ["429", "503", "429", "503", "hang"]
BODIES = {
    "429": {"error": "Model is overloaded", "error_type": "overloaded"},
    "503": {"error": "unhealthy", "error_type": "healthcheck"},
}


class Schedule:
    """The fate of each generation call; one schedule may serve several stand-ins."""

    def __init__(self, seed: int = 0) -> None:
        self.random = random.Random(seed)
        self.pending: list[str] = []
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()  # each stand-in serves from its own thread

    def next(self) -> str:
        with self.lock:
            if not self.pending:
                self.pending = BLOCK.copy()
                self.random.shuffle(self.pending)
            fate = self.pending.pop()
            self.injected[fate] += 1
            return fate


class Chaos:
    """ASGI middleware: 20% overloaded or unavailable, 5% hanging past the timeout."""

    def __init__(self, app: ASGIApp, schedule: Schedule, *, hang_seconds: float) -> None:
        self.app = app
        self.schedule = schedule
        self.hang_seconds = hang_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in GENERATION_PATHS:
            await self.app(scope, receive, send)
            return
        fate = self.schedule.next()
        if fate == "hang":
            # The client gives up first; what the stand-in then answers goes nowhere.
            receive = await _replayable(receive)
            await asyncio.sleep(self.hang_seconds)
        elif fate != "pass":
            await _answer(send, int(fate), json.dumps(BODIES[fate]).encode())
            return
        await self.app(scope, receive, send)


async def _replayable(receive: Receive) -> Receive:
    """Read the whole body now (before the client leaves) and hand it on again later."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replayed() -> Message:
        return replay.pop() if replay else {"type": "http.disconnect"}

    return replayed


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
