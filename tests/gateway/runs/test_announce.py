"""New work announced to idle workers (PostgreSQL's LISTEN/NOTIFY): a run is claimed at once,
not at a worker's next poll."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.gateway.runs.helpers import Fakes, Sessions, create, eventually, seed_dataset, spec

from harmrank.gateway.db.base import utc_now
from harmrank.gateway.db.engine import session_factory
from harmrank.gateway.db.run_models import Task
from harmrank.gateway.runs import announce, control
from harmrank.gateway.runs.tasks import Backoff
from harmrank.gateway.runs.worker import run_worker

POLL = 60.0  # far longer than the test may wait: only an announcement can wake the worker

POSTGRESQL = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def claimed(sessions: Sessions) -> int:
    async with sessions() as session:
        found = select(func.count()).where(Task.started_at.is_not(None))
        return (await session.scalar(found.select_from(Task))) or 0


@contextlib.asynccontextmanager
async def idle_worker(engine: AsyncEngine, stop: asyncio.Event) -> AsyncIterator[None]:
    worker = asyncio.create_task(
        run_worker(
            session_factory(engine),
            Fakes().executors(),
            worker_id="listening",
            concurrency=4,
            claim_batch=4,
            poll_interval=POLL,
            lease_seconds=30,
            stop_event=stop,
            backoff=Backoff(base_seconds=0.01, max_seconds=0.05),
            listen=announce.listener(engine),
        )
    )
    await asyncio.sleep(0.5)  # its first claim found nothing: it waits for a poll, or a word
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)


@POSTGRESQL
async def test_an_idle_worker_claims_a_new_run_at_once(
    migrated_engine: AsyncEngine, session_maker: Sessions
) -> None:
    assert announce.listener(migrated_engine) is not None
    await seed_dataset(session_maker)
    stop = asyncio.Event()
    async with idle_worker(migrated_engine, stop):
        started = time.monotonic()
        await create(session_maker, spec())

        async def some_claimed() -> bool:
            return await claimed(session_maker) > 0

        await eventually(some_claimed, within=5)
        assert time.monotonic() - started < 5 < POLL


@POSTGRESQL
async def test_a_resumed_run_is_announced(
    migrated_engine: AsyncEngine, session_maker: Sessions
) -> None:
    await seed_dataset(session_maker)
    run = await create(session_maker, spec())
    async with session_maker.begin() as session:
        await control.cancel_run(session, run.id, now=utc_now())
    stop = asyncio.Event()
    async with idle_worker(migrated_engine, stop):
        assert await claimed(session_maker) == 0
        async with session_maker.begin() as session:
            assert await control.resume_run(session, run.id) > 0

        async def some_claimed() -> bool:
            return await claimed(session_maker) > 0

        await eventually(some_claimed, within=5)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_workers_poll(migrated_engine: AsyncEngine) -> None:
    assert announce.listener(migrated_engine) is None
