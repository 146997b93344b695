"""Workers hear of new work at once instead of at their next poll: PostgreSQL's LISTEN/NOTIFY.

A worker with nothing to do looks for ready tasks every ``poll_interval_seconds`` (1 s by
default), so a new run waited up to a poll before its first task was claimed. The gateway
announces the tasks it queues (a run planned, a run resumed) with a ``NOTIFY`` in the
transaction that queues them, which PostgreSQL delivers at its commit; each worker listens on
a connection of its own and claims at once. Polling stays: what a worker misses (while it
reconnects, on SQLite, a retry whose backoff ends) costs it at most a poll, as before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from harmrank.gateway.runs.tasks import Backoff

logger = logging.getLogger(__name__)

Listen = Callable[[Callable[[], None]], Coroutine[Any, Any, None]]
"""Runs until cancelled, calling its argument whenever tasks are announced."""

CHANNEL = "harmrank_tasks"


async def announce(session: AsyncSession) -> None:
    """Tell the listening workers that tasks are ready, once the session's transaction commits
    (PostgreSQL; elsewhere the workers' polls find them)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"NOTIFY {CHANNEL}"))


def listener(engine: AsyncEngine) -> Listen | None:
    """What a worker on ``engine`` listens with: :func:`listen` on it, when it is PostgreSQL's."""
    if engine.dialect.name != "postgresql":
        return None
    return functools.partial(listen, engine)


async def listen(engine: AsyncEngine, heard: Callable[[], None]) -> None:
    """Until cancelled, call ``heard`` at each announcement, and each time listening starts
    (what was announced before was missed). A lost connection (PostgreSQL restarting, say) is
    replaced after a capped backoff; meanwhile the polls find the work."""
    backoff = Backoff(base_seconds=0.5, max_seconds=5.0)
    failures = 0
    while True:
        try:
            await _listen_once(engine, heard)
            failures = 0
        except Exception as exc:  # refused, reset, a restart: anything but a cancel
            failures += 1
            logger.warning("listening for announced tasks failed (%s); polling meanwhile", exc)
        await asyncio.sleep(backoff.delay(max(failures, 1)))


async def _listen_once(engine: AsyncEngine, heard: Callable[[], None]) -> None:
    """Listen on one connection of the engine's until PostgreSQL closes it."""
    async with engine.connect() as connection:
        try:
            raw: Any = (await connection.get_raw_connection()).driver_connection
            lost = asyncio.Event()
            raw.add_termination_listener(lambda _connection: lost.set())
            await raw.add_listener(CHANNEL, lambda *_notification: heard())
            heard()
            await lost.wait()
        finally:
            # Never back into the pool still listening (or closed under it).
            await connection.invalidate()
