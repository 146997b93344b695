"""The worker: N loops, each claiming a batch of ready tasks, working them concurrently under
renewed leases, and settling them in groups.

A batch of up to ``claim_batch`` tasks costs two kinds of short transaction, however many tasks
it holds:

1. **claim**: reap expired leases (now and then), claim the batch (``FOR UPDATE SKIP LOCKED``)
   and read what its generate and judge calls need, a few statements for the whole batch;
2. **settle**: whichever tasks finished since the last settle, together: one UPDATE marks them
   done where this worker still holds them, one executemany keeps each call's details on its
   task, and one insert-if-absent per table stores their results. Only the tasks still held
   have their results stored; the others are someone else's now.

Per-task transactions are for the exceptions: a failed task is recorded in its own (retried
later with backoff, or failed for good), a score task reads its run's rankings in its own, and
when a group's transaction fails its tasks are settled one by one, so one bad task never loses
another's result. Within a batch, tasks that finish at once are settled at once and a slow one
does not hold back the others' results; the next batch is claimed when all are settled.

The downstream calls happen between the transactions, outside any, so a slow model never holds
a database lock or connection. One heartbeat per batch renews the leases of its unfinished
tasks, in one statement, every third of a lease; a task found lost (its lease expired and
another worker took it) or abandoned (its run was cancelled) is stopped, and nothing of it is
stored.

Stopping (``stop_event``) is graceful: each loop finishes the batch it holds, then returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.gateway.db.base import utc_now
from harmrank.gateway.db.run_models import Stage
from harmrank.gateway.runs import queue, store, work
from harmrank.gateway.runs.executors import Executors, failure_of
from harmrank.gateway.runs.queue import Backoff, ClaimedTask, Completion, Failure, Lease

logger = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class _Finished:
    """A task whose work is done: what to store with it (nothing when its result existed)."""

    task: ClaimedTask
    made: work.Made | None = None
    report: dict[str, Any] | None = None
    """A score task's report."""
    details: dict[str, Any] | None = None
    """What to keep on a score task; generate and judge keep ``made.details``."""

    @property
    def completion(self) -> Completion:
        if self.made is not None:
            return Completion(self.task.id, self.made.details)
        return Completion(self.task.id, self.details, reused=self.report is None)


@dataclass(frozen=True)
class _Failed:
    task: ClaimedTask
    failure: Failure


_Outcome = _Finished | _Failed


async def run_worker(
    session_maker: Sessions,
    executors: Executors,
    *,
    worker_id: str,
    concurrency: int,
    claim_batch: int,
    poll_interval: float,
    lease_seconds: float,
    stop_event: asyncio.Event,
    backoff: Backoff | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Work tasks with ``concurrency`` loops of up to ``claim_batch`` tasks each until
    ``stop_event`` is set."""
    if min(concurrency, claim_batch) < 1 or lease_seconds <= 0 or poll_interval <= 0:
        raise ValueError(
            "concurrency, claim_batch, lease_seconds and poll_interval must be positive"
        )
    async with asyncio.TaskGroup() as group:
        for slot in range(concurrency):
            slot_worker = _Worker(
                session_maker,
                executors,
                f"{worker_id}/{slot}",
                claim_batch,
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
    claim_batch: int
    lease_seconds: float
    backoff: Backoff
    clock: Callable[[], datetime]
    reaped_at: float = float("-inf")

    async def loop(self, stop: asyncio.Event, poll_interval: float) -> None:
        while not stop.is_set():
            try:
                batch = await self.claim()
                if batch:
                    await self.process(batch)
                    continue
            except Exception:
                # The database went away, say: the leases (if any) expire and a peer retries.
                logger.exception("worker %s: claiming or settling tasks failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_interval)

    async def claim(self) -> list[tuple[ClaimedTask, work.Loaded | None]]:
        """Claim a batch and load what its generate and judge tasks need, in one transaction."""
        async with self.sessions.begin() as session:
            now = self.clock()
            # Expired leases are rare and matter on the scale of a lease: reaping them on every
            # claim cost two UPDATEs per claim for nothing.
            if time.monotonic() - self.reaped_at >= min(self.lease_seconds / 4, 5.0):
                await queue.reap_expired(session, now=now)
                self.reaped_at = time.monotonic()
            tasks = await queue.claim(
                session,
                self.name,
                now=now,
                lease_seconds=self.lease_seconds,
                limit=self.claim_batch,
            )
            loaded = await work.load_batch(session, tasks)
        return [(task, loaded.get(task.id)) for task in tasks]

    async def process(self, batch: Sequence[tuple[ClaimedTask, work.Loaded | None]]) -> None:
        """Work the batch's tasks concurrently; settle each group of them that finishes."""
        working = {
            task.id: asyncio.create_task(self.attempt(task, loaded)) for task, loaded in batch
        }
        heartbeat = asyncio.create_task(self.heartbeat(working))
        try:
            pending: set[asyncio.Task[_Outcome]] = set(working.values())
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                await self.settle([t.result() for t in done if not t.cancelled()])
        finally:
            # Only when the worker itself is cancelled are tasks still working here.
            for task in working.values():
                task.cancel()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        stopped = [task_id for task_id, task in working.items() if task.cancelled()]
        if stopped:
            logger.info(
                "worker %s: tasks %s stopped: lease lost or run cancelled", self.name, stopped
            )

    async def heartbeat(self, working: dict[int, asyncio.Task[_Outcome]]) -> None:
        """Renew the leases of the batch's unfinished tasks; stop those no longer ours."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            unfinished = [task_id for task_id, task in working.items() if not task.done()]
            if not unfinished:
                continue
            try:
                async with self.sessions.begin() as session:
                    leases = await queue.renew(
                        session,
                        unfinished,
                        self.name,
                        now=self.clock(),
                        lease_seconds=self.lease_seconds,
                    )
            except Exception:
                logger.exception("worker %s: renewing the leases of %s", self.name, unfinished)
                continue
            for task_id, lease in leases.items():
                if lease is not Lease.RENEWED:
                    working[task_id].cancel()

    async def attempt(self, task: ClaimedTask, loaded: work.Loaded | None) -> _Outcome:
        """Do the task's call; how it failed, if it did."""
        try:
            if task.stage == Stage.SCORE:
                return await self.score(task)
            assert loaded is not None, "load_batch loads every generate and judge task"
            return await self.call(task, loaded)
        except Exception as exc:
            return _Failed(task, failure_of(exc))

    async def call(self, task: ClaimedTask, loaded: work.Loaded) -> _Finished:
        if isinstance(loaded, Exception):
            raise loaded  # building its work failed: the task fails like any other
        if isinstance(loaded, work.GenerateWork):
            result = await self.executors.generate.execute(loaded)
            return _Finished(task, work.response_made(task, result))
        if isinstance(loaded, work.JudgeWork):
            judgment = await self.executors.judge.execute(loaded)
            return _Finished(task, work.ranking_made(task, loaded, judgment))
        return _Finished(task)  # ALREADY_STORED: reused, uncalled

    async def score(self, task: ClaimedTask) -> _Finished:
        async with self.sessions() as session:
            loaded = await work.load_score(session, task)
        report = await self.executors.score.execute(loaded)
        details = {"annotators": len(loaded.annotators), "pairs": len(loaded.pairs)}
        return _Finished(task, report=report, details=details)

    async def settle(self, outcomes: Sequence[_Outcome]) -> None:
        """Store the finished tasks together (one by one if that fails); record failures."""
        finished = [o for o in outcomes if isinstance(o, _Finished)]
        try:
            await self.store(finished)
        except Exception as exc:
            if len(finished) == 1:  # the task itself cannot be stored: it fails, by the rules
                await self.fail(finished[0].task, failure_of(exc))
            else:
                logger.exception("worker %s: storing %d tasks together", self.name, len(finished))
                for one in finished:
                    await self.settle([one])
        for outcome in outcomes:
            if isinstance(outcome, _Failed):
                await self.fail(outcome.task, outcome.failure)

    async def store(self, finished: Sequence[_Finished]) -> None:
        """Mark the tasks done and store their results, in one transaction; of the tasks this
        worker no longer holds, nothing is stored."""
        if not finished:
            return
        async with self.sessions.begin() as session:
            completions = [f.completion for f in finished]
            held = await queue.complete(session, self.name, completions, now=self.clock())
            kept = [f for f in finished if f.task.id in held]
            await work.store_made(session, [f.made for f in kept if f.made is not None])
            for f in kept:
                if f.report is not None:
                    await store.save_report(session, f.task.run_id, f.report)
        lost = [f.task.id for f in finished if f.task.id not in held]
        if lost:
            logger.info("worker %s: lost the leases of tasks %s", self.name, lost)

    async def fail(self, task: ClaimedTask, failure: Failure) -> None:
        """Record the task's failure, in its own transaction."""
        try:
            async with self.sessions.begin() as session:
                await queue.fail(
                    session, task, self.name, failure, now=self.clock(), backoff=self.backoff
                )
        except Exception:
            # The lease expires and a peer retries the task.
            logger.exception("worker %s: recording the failure of task %d", self.name, task.id)
