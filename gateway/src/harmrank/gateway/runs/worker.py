"""The worker: N loops that claim a ready task, work it under a renewed lease, and settle it.

One task, three short transactions: claim (with the reaping of expired leases), load what the
call needs, and store the result together with marking the task done. The downstream call
happens between them, outside any transaction, so a slow model never holds a database lock or
connection. A heartbeat renews the lease every third of it; when the renewal finds the task
lost (its lease expired and another worker took it) or abandoned (its run was cancelled), the
work is stopped and nothing of it is stored.

Stopping (``stop_event``) is graceful: each loop finishes the task it holds, then returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.gateway.db.base import utc_now
from harmrank.gateway.db.run_models import Stage, TaskState
from harmrank.gateway.runs import queue, store, work
from harmrank.gateway.runs.executors import Executors, failure_of
from harmrank.gateway.runs.queue import Backoff, ClaimedTask, Lease

logger = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
Write = Callable[[AsyncSession], Awaitable[dict[str, Any] | None]]


class _LeaseLost(Exception):
    """The task is no longer ours: whatever this worker made of it is dropped."""


async def run_worker(
    session_maker: Sessions,
    executors: Executors,
    *,
    worker_id: str,
    concurrency: int,
    poll_interval: float,
    lease_seconds: float,
    stop_event: asyncio.Event,
    backoff: Backoff | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Work tasks with ``concurrency`` loops until ``stop_event`` is set."""
    if concurrency < 1 or lease_seconds <= 0 or poll_interval <= 0:
        raise ValueError("concurrency, lease_seconds and poll_interval must be positive")
    async with asyncio.TaskGroup() as group:
        for slot in range(concurrency):
            slot_worker = _Worker(
                session_maker,
                executors,
                f"{worker_id}/{slot}",
                lease_seconds,
                backoff or Backoff(),
                clock,
            )
            group.create_task(slot_worker.loop(stop_event, poll_interval))


@dataclass
class _Worker:
    sessions: Sessions
    executors: Executors
    name: str
    lease_seconds: float
    backoff: Backoff
    clock: Callable[[], datetime]
    reaped_at: float = float("-inf")

    async def loop(self, stop: asyncio.Event, poll_interval: float) -> None:
        while not stop.is_set():
            try:
                task = await self.claim()
                if task is not None:
                    await self.process(task)
                    continue
            except Exception:
                # The database went away, say: the lease (if any) expires and a peer retries.
                logger.exception("worker %s: claiming or settling a task failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_interval)

    async def claim(self) -> ClaimedTask | None:
        async with self.sessions.begin() as session:
            now = self.clock()
            # Expired leases are rare and matter on the scale of a lease: reaping them on every
            # claim cost two UPDATEs per task for nothing.
            if time.monotonic() - self.reaped_at >= min(self.lease_seconds / 4, 5.0):
                await queue.reap_expired(session, now=now)
                self.reaped_at = time.monotonic()
            claimed = await queue.claim(
                session, self.name, now=now, lease_seconds=self.lease_seconds
            )
        return claimed[0] if claimed else None

    async def process(self, task: ClaimedTask) -> None:
        working = asyncio.create_task(self.execute(task))
        heartbeat = asyncio.create_task(self.heartbeat(task, working))
        try:
            await working
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the worker itself is being cancelled
            logger.info(
                "worker %s: task %d stopped: lease lost or run cancelled", self.name, task.id
            )
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def heartbeat(self, task: ClaimedTask, working: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                async with self.sessions.begin() as session:
                    lease = await queue.renew(
                        session,
                        task.id,
                        self.name,
                        now=self.clock(),
                        lease_seconds=self.lease_seconds,
                    )
            except Exception:
                logger.exception("worker %s: renewing the lease of task %d", self.name, task.id)
                continue
            if lease is not Lease.RENEWED:
                working.cancel()
                return

    async def execute(self, task: ClaimedTask) -> None:
        try:
            await self.attempt(task)
        except _LeaseLost:
            logger.info("worker %s: lost the lease of task %d", self.name, task.id)
        except Exception as exc:
            failure = failure_of(exc)
            async with self.sessions.begin() as session:
                await queue.fail(
                    session, task, self.name, failure, now=self.clock(), backoff=self.backoff
                )

    async def attempt(self, task: ClaimedTask) -> None:
        if task.stage == Stage.GENERATE:
            await self.generate(task)
        elif task.stage == Stage.JUDGE:
            await self.judge(task)
        else:
            await self.score(task)

    async def load(
        self, loader: Callable[[AsyncSession, ClaimedTask], Awaitable[Any]], task: ClaimedTask
    ) -> Any:
        async with self.sessions() as session:
            return await loader(session, task)

    async def generate(self, task: ClaimedTask) -> None:
        loaded: work.GenerateWork | str = await self.load(work.load_generate, task)
        if isinstance(loaded, str):
            return await self.finish(task, None, TaskState.REUSED)
        result = await self.executors.generate.execute(loaded)
        await self.finish(task, lambda session: work.store_generate(session, task, result))

    async def judge(self, task: ClaimedTask) -> None:
        loaded: work.JudgeWork | str = await self.load(work.load_judge, task)
        if isinstance(loaded, str):
            return await self.finish(task, None, TaskState.REUSED)
        judgment = await self.executors.judge.execute(loaded)
        await self.finish(task, lambda session: work.store_judge(session, task, loaded, judgment))

    async def score(self, task: ClaimedTask) -> None:
        loaded: work.ScoreWork = await self.load(work.load_score, task)
        report = await self.executors.score.execute(loaded)

        async def save(session: AsyncSession) -> dict[str, Any]:
            await store.save_report(session, task.run_id, report)
            return {"annotators": len(loaded.annotators), "pairs": len(loaded.pairs)}

        await self.finish(task, save)

    async def finish(
        self, task: ClaimedTask, write: Write | None, state: TaskState = TaskState.DONE
    ) -> None:
        """Store the result and mark the task, in one transaction; nothing if it is not ours."""
        async with self.sessions.begin() as session:
            result = await write(session) if write is not None else None
            held = await queue.complete(
                session, task.id, self.name, now=self.clock(), state=state, result=result
            )
            if not held:
                raise _LeaseLost  # rolls the stored result back with the transaction
