"""The worker: per process one dispatcher that keeps up to ``concurrency`` tasks in flight,
claiming ready tasks in batches as slots free up and settling finished tasks in groups.

``concurrency`` is the most tasks in flight in the process, hence the most downstream calls it
makes at once: size it against the model servers and the providers' limits. ``claim_batch`` is
the most tasks one claim takes: the dispatcher claims what the free slots and the reserve
(below) lack, at most ``claim_batch``, so it bounds a transaction's size, never the calls in
flight.
A slow call holds its own slot, not the others'.

A few tasks more than the slots are claimed ahead (``reserve``: a claim batch for each settle
that may be open, at most ``concurrency``; leased and renewed like the tasks in flight), so that
a slot freed by a finished task is filled at once from the reserve, not only after the settle
transaction that claims again: the calls in flight stay at ``concurrency`` while finished
tasks wait to be settled together. A stop releases the
reserve (its tasks go back to the queue, their attempt uncounted); a worker that dies leaves
its leases to expire, like those of its tasks in flight.

Each transaction is short, and none is open across a downstream call, so a slow model never
holds a database lock or connection:

1. **claim**: reap expired leases and finish the plans of runs their gateway left half
   written (now and then, see ``planner``), claim the tasks (``FOR UPDATE SKIP LOCKED``)
   and read what their calls need (the stages that load with the claim, see ``stages``), a
   few statements however many tasks;
2. **settle**: the tasks that finished since the last settle, together (when a task finishes
   while others are in flight, the dispatcher waits up to ``settle_window`` for more to finish
   with it, so that tasks finishing one at a time, as with a model's fixed latency, still share
   a transaction; their slots take tasks of the reserve meanwhile, and a slot the reserve
   cannot fill ends the wait, so that the claim comes at once): one UPDATE marks them
   done where this worker still holds them, one executemany keeps each call's details on its
   task, and one insert-if-absent per table stores their results. Only the tasks still held
   have their results stored; the others are someone else's now. The claim into the slots
   they freed runs in the same transaction (one commit where there were two; should that
   transaction fail, the tasks are stored alone and the next claim runs on its own). Up to
   ``SETTLES_IN_FLIGHT`` settles are open at once: the tasks finishing while one waits on
   the database go into the next, so a settle's round trips never hold every free slot;
3. **heartbeat**: every third of a lease, one statement renews the leases of every task in
   flight or in the reserve (another abandons those of cancelled runs). A task found lost (its
   lease expired and another worker took it) or abandoned (its run was cancelled) is stopped,
   or dropped from the reserve, and nothing of it is stored.

Per-task transactions are for the exceptions: a failed task is recorded in its own (retried
later with backoff, or failed for good), a task whose stage loads alone (score: its run's
rankings) reads in its own, and when a group's transaction fails its tasks are settled one by
one, so one bad task never loses another's result.

When nothing is claimable the dispatcher claims again after ``poll_interval``, or sooner when a
task finishes (that may have made others ready) or when tasks are announced (``announce``: on
PostgreSQL the gateway announces a run it plans or resumes). Stopping (``stop_event``) is
graceful: no more claims or starts; the reserve is released; the tasks in flight finish and are
settled; then ``run_worker`` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from asyncio import FIRST_COMPLETED
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.common.logs import log_context
from harmrank.common.tracing import tracer_provider, work_span
from harmrank.gateway.db.base import utc_now
from harmrank.gateway.runs import breaker, planner, queue, repository, settle, work
from harmrank.gateway.runs.announce import Listen
from harmrank.gateway.runs.executors import Executors, failure_of
from harmrank.gateway.runs.stages import STAGES, load_claimed
from harmrank.gateway.runs.tasks import Backoff, ClaimedTask, Completion, Failure, Lease

logger = logging.getLogger(__name__)
TRACE_CONTEXTS_KEPT = 256
"""Runs whose traceparent a worker keeps (a worker serves a few runs at a time)."""

SETTLES_IN_FLIGHT = 2
"""Settle transactions a worker has open at once. One at a time, a run's pace was one claim
batch per settle: the tasks finishing while a settle waited on the database, and the slots
they freed, waited for it (``bench/platform_overhead.py``: at 0 ms × 16 half the slots sat
idle, at 100 ms × 64 a fifth). With two, the next settle stores and claims meanwhile."""

SETTLE_WINDOW_SECONDS = 0.1
"""How long a finished task waits for others in flight to finish with it before it is settled,
as long as the reserve keeps every slot busy and fewer than a claim batch have finished
(``bench/platform_overhead.py``: at 100 ms calls, 16 in flight, tasks otherwise finish and
settle one at a time, a transaction each). 20 ms made settles of about 3 tasks there; 0.1 s
with claims of 16 makes them of 16, and the run's CPU per call 2.53-2.59 → 2.08 ms at the same
calls/s (the eighth step of ``bench/README.md``). A wait ends at once when a slot would idle,
so a run's last tasks are settled as they finish."""

Sessions = async_sessionmaker[AsyncSession]


def default_claim_batch(concurrency: int) -> int:
    """A quarter of the slots, at least 16. A settle's statements cost the same for few tasks
    as for many: at 64 in flight, claims of 16 instead of 8 made 1% more calls/s for 8% less
    CPU per call (``bench/platform_overhead.py``, 100 ms x 64, two rounds; 32 was no better);
    at 16 in flight, with the settle window's 0.1 s, 19% less CPU per call at 100 ms and 9% at
    0 ms, at the same calls/s (the eighth step of ``bench/README.md``)."""
    return max(16, concurrency // 4)


@dataclass(frozen=True)
class _Finished:
    """A task whose work is done: what to store with it (nothing when its result existed)."""

    task: ClaimedTask
    made: work.Made | None = None

    @property
    def completion(self) -> Completion:
        if self.made is not None:
            return Completion(self.task.id, self.made.details)
        return Completion(self.task.id, reused=True)


@dataclass(frozen=True)
class _Failed:
    task: ClaimedTask
    failure: Failure


_Outcome = _Finished | _Failed
_Claimed = list[tuple[ClaimedTask, work.Loaded | None]]


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
    settle_window: float = SETTLE_WINDOW_SECONDS,
    listen: Listen | None = None,
) -> None:
    """Work tasks, at most ``concurrency`` at once, claiming at most ``claim_batch`` at a time,
    until ``stop_event`` is set and the tasks in flight are settled. ``listen``, when given,
    runs meanwhile and calls its argument whenever tasks are announced (``announce.listen``):
    the worker then claims at once instead of at its next poll."""
    if min(concurrency, claim_batch) < 1 or lease_seconds <= 0 or poll_interval <= 0:
        raise ValueError(
            "concurrency, claim_batch, lease_seconds and poll_interval must be positive"
        )
    dispatcher = _Dispatcher(
        session_maker,
        executors,
        # Two processes given the same worker id would renew and settle each other's tasks.
        f"{worker_id}/{secrets.token_hex(3)}",
        concurrency,
        claim_batch,
        lease_seconds,
        backoff or Backoff(),
        clock,
        settle_window,
        # Each open settle claims up to a batch, counted as held until it answers: a reserve
        # of one batch left the slots short while two were open (bench/platform_overhead.py).
        reserve=min(concurrency, claim_batch * SETTLES_IN_FLIGHT),
    )
    await dispatcher.run(stop_event, poll_interval, listen)


@dataclass
class _Dispatcher:
    sessions: Sessions
    executors: Executors
    name: str
    """The lease owner: the tasks in flight share one lease holder, so one statement renews
    them all."""
    concurrency: int
    claim_batch: int
    lease_seconds: float
    backoff: Backoff
    clock: Callable[[], datetime]
    settle_window: float
    reserve: int = 0
    """How many tasks to hold claimed ahead of a free slot."""
    working: dict[int, asyncio.Task[_Outcome]] = field(default_factory=dict)
    """The tasks in flight by task id, from their start until they finish."""
    finished: dict[int, asyncio.Task[_Outcome]] = field(default_factory=dict)
    """The tasks that finished since the last settle, by task id."""
    reserved: list[tuple[ClaimedTask, work.Loaded | None]] = field(default_factory=list)
    """Tasks claimed ahead, started as slots free up."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    abandoned: bool = False
    waiter: asyncio.Future[None] | None = None
    """Resolved when a task in flight finishes: one callback per task, where waiting with
    ``asyncio.wait`` on every task in flight added and removed a callback on each, each time."""
    settling: set[asyncio.Task[None]] = field(default_factory=set)
    """The settle transactions open now (at most ``SETTLES_IN_FLIGHT``)."""
    claiming: int = 0
    """How many tasks the settles open now are claiming: counted as held until they answer."""
    poll_interval: float = 1.0
    heard: bool = False
    """Tasks were announced since the last claim: a poll's wait ends at once."""
    reaped_at: float = float("-inf")
    runs: work.Runs = field(default_factory=work.Runs)
    """The specs and models of the runs it claims tasks of, read once per run."""
    trace_contexts: OrderedDict[int, str | None] = field(default_factory=OrderedDict)
    """The stored traceparent of the runs worked on last (only when tracing is on): read once
    per run while it is among the ``TRACE_CONTEXTS_KEPT`` latest, so a worker living through
    thousands of runs does not keep them all."""
    tracer: TracerProvider | None = field(default_factory=tracer_provider)
    """Where the task spans go; None: tracing is off. Decided once, as the services' apps and
    clients decide it when they are made: asking per task read the environment three times
    (2.8% of the worker's CPU at 100 ms x 64, py-spy)."""

    async def run(
        self,
        stop: asyncio.Event,
        poll_interval: float,
        listen: Listen | None = None,
    ) -> None:
        self.stop = stop
        self.poll_interval = poll_interval
        helpers = [asyncio.create_task(self.heartbeat()), asyncio.create_task(self.woken_by(stop))]
        if listen is not None:
            helpers.append(asyncio.create_task(listen(self.hear)))
        try:
            # After a stop, nothing starts: the tasks claimed ahead (the reserve, and those the
            # settles still open claim) are released; those in flight finish and are settled.
            while self.working or self.finished or self.settling or not stop.is_set():
                self.heard = False  # the claim below finds what was announced so far
                wait = None if stop.is_set() else await self.fill()
                if stop.is_set() and self.reserved:
                    await self.release_reserved()
                await self.until_finished(wait, stop)
                await self.settle_finished()
            if self.reserved:
                await self.release_reserved()
        finally:
            self.abandoned = True  # no task starts from the reserve any more
            await self.abandon(helpers)

    def wanted(self) -> int:
        """How many tasks to claim: the free slots and the reserve's, less what the open
        settles are claiming, at most a batch."""
        held = len(self.working) + len(self.reserved) + self.claiming
        return max(0, min(self.concurrency + self.reserve - held, self.claim_batch))

    async def fill(self) -> float | None:
        """Claim what the free slots and the reserve lack (beyond what the open settles are
        claiming) and start them. Answers how long to wait for a task to finish before
        claiming again: no wait when the claim got all it asked for and more are wanted (more
        may be ready), no limit when no slot is free, else the poll interval."""
        wanted = self.wanted()
        if wanted == 0:
            # Every slot busy: wait for a task to finish. Slots an open settle is claiming for
            # may stay free if it finds too few: look again at the next poll.
            return None if len(self.working) >= self.concurrency else self.poll_interval
        try:
            claimed = await self.claim(wanted)
        except Exception:
            # The database went away, say: try again at the next poll.
            logger.exception("worker %s: claiming tasks failed", self.name)
            return self.poll_interval
        self.reserved += claimed
        self.start_reserved()
        if len(claimed) == wanted and self.wanted():
            return 0.0  # more may be ready, and the slots or the reserve want more
        if len(self.working) >= self.concurrency:
            return None
        return self.poll_interval

    async def claim(self, limit: int) -> _Claimed:
        """Claim up to ``limit`` tasks and load what the calls of those whose stage loads with
        the claim need, in one transaction."""
        async with self.sessions.begin() as session:
            return await self.claim_in(session, limit)

    async def claim_in(self, session: AsyncSession, limit: int) -> _Claimed:
        now = self.clock()
        # Expired leases are rare and matter on the scale of a lease: reaping them on every
        # claim cost two UPDATEs per claim for nothing.
        if time.monotonic() - self.reaped_at >= min(self.lease_seconds / 4, 5.0):
            await settle.reap_expired(session, now=now)
            for run_id, error in (await planner.finish_half_planned(session, now=now)).items():
                if error is None:
                    logger.warning(
                        "worker %s: run %d was left half planned (its gateway stopped while "
                        "writing its tasks); wrote the rest",
                        self.name,
                        run_id,
                    )
                else:
                    logger.error(
                        "worker %s: run %d was left half planned and its rest could not be "
                        "written: %r",
                        self.name,
                        run_id,
                        error,
                    )
            self.reaped_at = time.monotonic()
        tasks = await queue.claim(
            session, self.name, now=now, lease_seconds=self.lease_seconds, limit=limit
        )
        loaded = await load_claimed(session, tasks, self.runs)
        return [(task, loaded.get(task.id)) for task in tasks]

    def start_reserved(self) -> None:
        """Start tasks of the reserve into the free slots, oldest claim first."""
        if self.stop.is_set() or self.abandoned:
            return
        while self.reserved and len(self.working) < self.concurrency:
            self.start(*self.reserved.pop(0))

    def start(self, task: ClaimedTask, loaded: work.Loaded | None) -> None:
        stale = self.working.get(task.id)
        if stale is not None:
            # Our own lease on it expired (the heartbeats failed) and this claim is a new
            # attempt: the old one is lost like any other, and must not hold a second slot.
            stale.cancel()
        attempt = asyncio.create_task(self.attempt(task, loaded))
        attempt.add_done_callback(lambda done: self.finish(task.id, done))
        self.working[task.id] = attempt

    def finish(self, task_id: int, attempt: asyncio.Task[_Outcome]) -> None:
        """A task finished (or was stopped): to be settled; its slot goes to the reserve."""
        if self.working.get(task_id) is attempt:  # not a stale attempt, replaced by a new one
            del self.working[task_id]
            self.finished[task_id] = attempt
        self.start_reserved()
        self.wake()

    def hear(self) -> None:
        """Tasks were announced (a run planned or resumed): end a poll's wait."""
        self.heard = True
        self.wake()

    async def woken_by(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def until_finished(self, at_most: float | None, stop: asyncio.Event) -> None:
        """Wait until a task in flight finishes, or ``at_most`` seconds (None: no limit); then
        up to ``settle_window`` more while others in flight may finish with it, until a claim
        batch's worth has or a slot is free (the reserve ran out and no open settle is
        claiming for it: claim at once). With no task in flight, wait for an open settle (its
        claim may start some), or else for the next poll, which a stop cuts short."""
        if self.working or self.finished:
            # A wait of at_most is a poll for free slots: an announcement ends it.
            if not await self.finished_within(at_most, 1, heed=at_most is not None):
                return
            wanted = min(self.claim_batch, len(self.working) + len(self.finished))
            await self.finished_within(self.settle_window, wanted, while_busy=True)
        elif self.settling:
            await asyncio.wait(self.settling, timeout=at_most, return_when=FIRST_COMPLETED)
        else:
            poll = self.poll_interval if at_most is None else at_most
            await self.finished_within(poll, 1, heed=True)

    async def finished_within(
        self, seconds: float | None, count: int, *, while_busy: bool = False, heed: bool = False
    ) -> int:
        """Wait until ``count`` tasks are finished and not yet settled, or ``seconds`` (None:
        no limit), or (``while_busy``) until a slot is free, or (``heed``) until tasks are
        announced or the worker is told to stop; answers how many are finished."""
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        while True:
            done = len(self.finished)
            remaining = None if deadline is None else deadline - loop.time()
            idle = while_busy and len(self.working) + self.claiming < self.concurrency
            called = heed and (self.heard or self.stop.is_set())
            if done >= count or idle or called or (remaining is not None and remaining <= 0):
                return done
            self.waiter = loop.create_future()
            timer = None if remaining is None else loop.call_later(remaining, self.wake)
            try:
                await self.waiter
            finally:
                self.waiter = None
                if timer is not None:
                    timer.cancel()

    async def settle_finished(self) -> None:
        """Open a settle of the tasks that finished, together (once fewer than
        ``SETTLES_IN_FLIGHT`` are open), claiming into the slots they free unless stopping."""
        if not self.finished:
            return
        while len(self.settling) >= SETTLES_IN_FLIGHT:
            await asyncio.wait(self.settling, return_when=FIRST_COMPLETED)
        done, self.finished = self.finished, {}
        wanted = 0 if self.stop.is_set() else self.wanted()
        self.claiming += wanted
        settle = asyncio.create_task(self.settle_done(done, wanted))
        self.settling.add(settle)
        settle.add_done_callback(self.settling.discard)

    async def settle_done(self, done: dict[int, asyncio.Task[_Outcome]], wanted: int) -> None:
        """Store the finished tasks ``done`` and claim ``wanted`` more, in one transaction;
        the claimed join the reserve and start in the free slots."""
        claimed = None
        try:
            outcomes = [t.result() for t in done.values() if not t.cancelled()]
            claimed = await self.settle(outcomes, wanted)
        except Exception:
            # The database went away, say: the leases expire and a peer retries the tasks.
            logger.exception("worker %s: settling tasks %s failed", self.name, list(done))
        finally:
            self.claiming -= wanted
        stopped = [task_id for task_id, task in done.items() if task.cancelled()]
        if stopped:
            logger.info(
                "worker %s: tasks %s stopped: lease lost or run cancelled", self.name, stopped
            )
        if claimed:
            self.reserved += claimed
            self.start_reserved()

    async def abandon(self, helpers: list[asyncio.Task[None]]) -> None:
        """Stop the heartbeat and the other helpers, and the tasks still in flight (only when
        the worker itself is cancelled are there any): their leases expire and a peer retries
        them."""
        for task in [*helpers, *self.working.values(), *self.settling]:
            task.cancel()
        await asyncio.gather(
            *helpers, *self.working.values(), *self.settling, return_exceptions=True
        )

    async def heartbeat(self) -> None:
        """Renew the leases of the tasks in flight, finished but not yet settled, and in the
        reserve; stop those no longer ours."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if self.working or self.finished or self.reserved:
                # A finished task keeps its lease until its settle: let it lapse meanwhile (a
                # settle window, a slow transaction) and another worker calls it again.
                held = [*self.finished, *(task.id for task, _ in self.reserved)]
                await self.renew(dict(self.working), held)

    async def renew(self, working: dict[int, asyncio.Task[_Outcome]], held: list[int]) -> None:
        try:
            async with self.sessions.begin() as session:
                leases = await queue.renew(
                    session,
                    [*working, *held],
                    self.name,
                    now=self.clock(),
                    lease_seconds=self.lease_seconds,
                )
        except Exception:
            logger.exception("worker %s: renewing the leases of %s", self.name, list(working))
            return
        gone = {task_id for task_id, lease in leases.items() if lease is not Lease.RENEWED}
        for task_id in gone & working.keys():
            # A task that finished meanwhile is not stopped by this; its settle finds that it
            # is no longer held, and stores nothing of it.
            working[task_id].cancel()
        # A reserved task no longer ours is someone else's, or its run's: never started. (A
        # finished one no longer ours is found so by its settle, which stores nothing of it.)
        self.reserved = [(task, loaded) for task, loaded in self.reserved if task.id not in gone]

    def take_reserved(self, which: Callable[[ClaimedTask], bool]) -> list[int]:
        """Take the reserve's tasks that ``which`` picks out of it; answers their ids."""
        taken = [task.id for task, _ in self.reserved if which(task)]
        if taken:
            self.reserved = [(task, loaded) for task, loaded in self.reserved if not which(task)]
        return taken

    async def release_reserved(self) -> None:
        """Give the reserve back to the queue (a stop): its tasks were never started."""
        ids = self.take_reserved(lambda _: True)
        try:
            async with self.sessions.begin() as session:
                await queue.release(session, ids, self.name)
        except Exception:
            # Their leases expire, and each counts an attempt that made no call.
            logger.exception("worker %s: releasing the claimed tasks %s", self.name, ids)

    async def attempt(self, task: ClaimedTask, loaded: work.Loaded | None) -> _Outcome:
        """Do the task's call, in a span of the run's trace and with its ids in the logs."""
        with (
            log_context(run_id=task.run_id, task_id=task.id),
            await self.task_span(task),
        ):
            outcome = await self._attempt(task, loaded)
            if isinstance(outcome, _Failed):
                # Recorded at once, while the task still holds its slot, not with the next
                # settle: a freed slot starts a task of the reserve, and a judge's failure must
                # open its circuit breaker before that task is called (``fail``).
                await self.fail(outcome.task, outcome.failure)
            return outcome

    async def task_span(self, task: ClaimedTask) -> contextlib.AbstractContextManager[None]:
        """The task's span, in the trace of the request that created its run."""
        if self.tracer is None:
            return contextlib.nullcontext()
        parent = await self.trace_context(task.run_id)
        attributes = {
            "harmrank.run_id": task.run_id,
            "harmrank.task_id": task.id,
            "harmrank.stage": task.stage.value,
        }
        return work_span(self.tracer, f"task {task.stage.value}", parent, attributes)

    async def trace_context(self, run_id: int) -> str | None:
        if run_id not in self.trace_contexts:
            async with self.sessions() as session:
                self.trace_contexts[run_id] = await repository.run_trace_context(session, run_id)
            if len(self.trace_contexts) > TRACE_CONTEXTS_KEPT:
                self.trace_contexts.popitem(last=False)  # the least recently used run's
        self.trace_contexts.move_to_end(run_id)
        return self.trace_contexts[run_id]

    async def _attempt(self, task: ClaimedTask, loaded: work.Loaded | None) -> _Outcome:
        """Do the task's call, by its stage's entry in the registry; how it failed, if it did."""
        handler = STAGES[task.stage]
        try:
            if not handler.with_claim:
                async with self.sessions() as session:
                    loaded = (await handler.load(session, [task], self.runs))[task.id]
            if isinstance(loaded, Exception):
                raise loaded  # building its work failed: the task fails like any other
            if loaded == work.ALREADY_STORED:
                return _Finished(task)  # reused, uncalled
            result = await handler.call(self.executors, loaded)
            return _Finished(task, handler.made(task, loaded, result))
        except Exception as exc:
            failure = failure_of(exc)
            budget = self.executors.budget
            if budget is not None and handler.paid_calls:
                failure = budget.settle(task.attempts, failure)
            return _Failed(task, failure)

    async def settle(self, outcomes: Sequence[_Outcome], wanted: int = 0) -> _Claimed | None:
        """Store the finished tasks together (one by one if that fails), claiming ``wanted``
        tasks in the same transaction (failed tasks were recorded as they failed). Answers what
        it claimed (None: no claim was made)."""
        finished = [o for o in outcomes if isinstance(o, _Finished)]
        claimed = None
        if wanted:
            try:
                claimed = await self.store(finished, wanted)
            except Exception:
                # The claim or the store failed: store alone, by the rules below, and let the
                # next fill claim on its own.
                logger.info(
                    "worker %s: storing with the next claim failed", self.name, exc_info=True
                )
        if claimed is None:
            await self.store_alone(finished)
        return claimed

    async def store_alone(self, finished: Sequence[_Finished]) -> None:
        """Store the finished tasks together, or one by one if that fails."""
        try:
            await self.store(finished)
        except Exception as exc:
            if len(finished) == 1:  # the task itself cannot be stored: it fails, by the rules
                await self.fail(finished[0].task, failure_of(exc))
            else:
                logger.exception("worker %s: storing %d tasks together", self.name, len(finished))
                for one in finished:
                    await self.store_alone([one])

    async def store(self, finished: Sequence[_Finished], wanted: int = 0) -> _Claimed:
        """Mark the tasks done and store their results, then claim ``wanted`` more, in one
        transaction (one commit where there were two); of the tasks this worker no longer
        holds, nothing is stored. Answers what it claimed."""
        if not finished and not wanted:
            return []
        async with self.sessions.begin() as session:
            completions = [f.completion for f in finished]
            held = await queue.complete(session, self.name, completions, now=self.clock())
            kept = [f for f in finished if f.task.id in held]
            await work.store_made(session, [f.made for f in kept if f.made is not None])
            claimed = await self.claim_in(session, wanted) if wanted else []
        lost = [f.task.id for f in finished if f.task.id not in held]
        if lost:
            logger.info("worker %s: lost the leases of tasks %s", self.name, lost)
        return claimed

    async def fail(self, task: ClaimedTask, failure: Failure) -> None:
        """Record the task's failure, in its own transaction.

        A judge task's failure first gives back the reserve's tasks of the same judge and run:
        the circuit breaker that failure may open stops only queued tasks, and a reserved task
        is leased, so it would otherwise still be called (and paid for) after the breaker
        opened. Given back, it is stopped with the rest, or claimed again if the breaker stays
        shut."""
        same_judge = self.take_reserved(lambda other: breaker.same_circuit(task, other))
        try:
            async with self.sessions.begin() as session:
                await queue.release(session, same_judge, self.name)
                await settle.fail(
                    session, task, self.name, failure, now=self.clock(), backoff=self.backoff
                )
        except Exception:
            # The lease expires and a peer retries the task.
            logger.exception("worker %s: recording the failure of task %d", self.name, task.id)
