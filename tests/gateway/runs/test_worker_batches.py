"""Continuous batching: up to ``concurrency`` tasks in flight, claimed a batch at a time as slots
free up, settled together as they finish."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pytest
from sqlalchemy import func, select
from tests.gateway.runs.helpers import (
    FakeGenerate,
    Fakes,
    Sessions,
    create,
    eventually,
    get,
    nonzero,
    seed_dataset,
    spec,
    work_until_settled,
)

from harmrank.common.contracts.generation import GenerationResult
from harmrank.gateway.db.models import Ranking, Response
from harmrank.gateway.db.run_models import Stage, Task, TaskState
from harmrank.gateway.runs import queue
from harmrank.gateway.runs.executors import Executor, Executors
from harmrank.gateway.runs.tasks import Backoff, TaskFailed
from harmrank.gateway.runs.work import GenerateWork
from harmrank.gateway.runs.worker import run_worker

W = TypeVar("W")
R = TypeVar("R")


async def count(sessions: Sessions, table: type[Response] | type[Ranking]) -> int:
    async with sessions() as session:
        return (await session.scalar(select(func.count()).select_from(table))) or 0


async def attempts_by_state(sessions: Sessions, run_id: int) -> dict[str, set[int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Task.state, Task.attempts).where(Task.run_id == run_id, Task.stage == "generate")
        )
    found: dict[str, set[int]] = {}
    for state, attempts in rows:
        found.setdefault(state, set()).add(attempts)
    return found


def start_worker(
    sessions: Sessions,
    executors: Executors,
    stop: asyncio.Event,
    name: str = "w",
    *,
    concurrency: int,
    claim_batch: int,
    lease_seconds: float = 5.0,
    settle_window: float = 0.005,
) -> asyncio.Task[None]:
    return asyncio.create_task(
        run_worker(
            sessions,
            executors,
            worker_id=name,
            concurrency=concurrency,
            claim_batch=claim_batch,
            poll_interval=0.02,
            lease_seconds=lease_seconds,
            stop_event=stop,
            backoff=Backoff(base_seconds=0.01, max_seconds=0.05),
            settle_window=settle_window,
        )
    )


async def run_done(sessions: Sessions, run_id: int) -> bool:
    return (await get(sessions, run_id)).status == "done"


async def calls_made(fake: FakeGenerate, n: int) -> None:
    """Wait until ``n`` generate calls were made (with a gate, until ``n`` are in flight)."""

    async def made() -> bool:
        return len(fake.calls) == n

    await eventually(made)


@dataclass
class InFlight:
    """Counts the calls in flight, of every stage. The first ``hold`` calls wait until that many
    are in flight together, so the peak is reached whatever the timing (and a worker that never
    reached it would hang the test, not pass it)."""

    hold: int
    now: int = 0
    peak: int = 0
    calls: int = 0
    barrier: asyncio.Barrier = field(init=False)

    def __post_init__(self) -> None:
        self.barrier = asyncio.Barrier(self.hold)

    @contextlib.asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        self.now, self.calls = self.now + 1, self.calls + 1
        self.peak = max(self.peak, self.now)
        try:
            if self.calls <= self.hold:
                await self.barrier.wait()
            await asyncio.sleep(0)  # the others may start meanwhile
            yield
        finally:
            self.now -= 1

    def around(self, executors: Executors) -> Executors:
        return Executors(
            Counted(executors.generate, self),
            Counted(executors.judge, self),
            Counted(executors.score, self),
        )


@dataclass
class Counted(Generic[W, R]):
    inner: Executor[W, R]
    counter: InFlight

    async def execute(self, work: W) -> R:
        async with self.counter.call():
            return await self.inner.execute(work)


@pytest.mark.parametrize(("concurrency", "claim_batch"), [(3, 8), (5, 2)])
async def test_never_more_tasks_in_flight_than_the_concurrency(
    session_maker: Sessions, concurrency: int, claim_batch: int
) -> None:
    """A claim takes at most the free slots (3 of 8); small claims fill the slots in turn (5
    by 2, 2 and 1)."""
    await seed_dataset(session_maker, prompts=10)
    run = await create(session_maker, spec())  # 20 generate, 20 judge, 1 score
    in_flight = InFlight(hold=concurrency)

    done = await work_until_settled(
        session_maker,
        in_flight.around(Fakes().executors()),
        run.id,
        concurrency=concurrency,
        claim_batch=claim_batch,
    )

    assert done.status == "done"
    assert in_flight.calls == 41
    assert in_flight.peak == concurrency


@dataclass
class Stalled(FakeGenerate):
    """One generation hangs until ``release`` is set."""

    stalled: str = "small-a/p0"
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def execute(self, work: GenerateWork) -> GenerationResult:
        if f"{work.model}/{work.prompt_id}" == self.stalled:
            await self.release.wait()
        return await super().execute(work)


async def test_a_slow_task_holds_its_own_slot_only(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=12)
    run = await create(session_maker, spec())  # 24 generate, 24 judge, 1 score
    stalled = Stalled()
    stop = asyncio.Event()
    worker = start_worker(
        session_maker, Fakes(generate=stalled).executors(), stop, concurrency=4, claim_batch=4
    )

    async def all_but_the_stalled_prompt_done() -> bool:
        progress = (await get(session_maker, run.id)).progress
        done = TaskState.DONE
        return (progress[Stage.GENERATE][done], progress[Stage.JUDGE][done]) == (23, 22)

    # While the stalled call holds its slot, the other three work through the 45 tasks it
    # does not block (its prompt's two judge tasks and the score task wait for it).
    await eventually(all_but_the_stalled_prompt_done, within=30)
    assert nonzero(await get(session_maker, run.id), "generate") == {"done": 23, "running": 1}

    stalled.release.set()
    await eventually(lambda: run_done(session_maker, run.id), within=30)
    stop.set()
    await asyncio.wait_for(worker, 5)
    assert await count(session_maker, Response) == 24


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_racing_workers_claim_each_task_once(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=20)
    run = await create(session_maker, spec())  # 40 generate, 40 judge, 1 score
    fakes = Fakes()  # shared: its calls are every worker's calls
    stop = asyncio.Event()
    workers = [
        start_worker(session_maker, fakes.executors(), stop, f"w{i}", concurrency=4, claim_batch=3)
        for i in range(3)
    ]

    await eventually(lambda: run_done(session_maker, run.id), within=60)
    stop.set()
    await asyncio.gather(*workers)

    generated = [(c.model, c.prompt_id) for c in fakes.generate.calls]
    judged = [(c.prompt_id, c.order_index) for c in fakes.judge.calls]
    assert len(generated) == len(set(generated)) == 40
    assert len(judged) == len(set(judged)) == 40
    assert (await count(session_maker, Response), await count(session_maker, Ranking)) == (40, 40)
    async with session_maker() as session:
        attempts = set(await session.scalars(select(Task.attempts).where(Task.run_id == run.id)))
    assert attempts == {1}  # no task was ever claimed a second time


async def test_a_failing_task_leaves_the_others_stored(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=3)
    run = await create(session_maker, spec(judges=[{"name": "judge-x", "orders": 1}]))
    fakes = Fakes()
    fakes.generate.failures["small-a/p1"] = [
        TaskFailed("generation_validation", "input too long", transient=False)
    ]

    done = await work_until_settled(
        session_maker, fakes.executors(), run.id, concurrency=6, claim_batch=6
    )

    assert nonzero(done, "generate") == {"done": 5, "failed": 1}
    assert nonzero(done, "judge") == {"done": 2, "failed": 1}
    assert await count(session_maker, Response) == 5


@dataclass
class RefusedText(FakeGenerate):
    """Answers one prompt with a NUL character, which PostgreSQL refuses to store in text."""

    refused: str = "p1"

    async def execute(self, work: GenerateWork) -> GenerationResult:
        result = await super().execute(work)
        if work.prompt_id == self.refused:
            return result.model_copy(update={"text": "nul \x00 byte"})
        return result


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_group_the_database_refuses_is_settled_one_by_one(
    session_maker: Sessions,
) -> None:
    """The six generations finish together, so they are settled in one transaction, which the
    two NUL texts make fail; settled one by one instead, only those two fail (as a database
    error, retried up to their attempts) and the other four are stored at the first attempt."""
    await seed_dataset(session_maker, prompts=3)
    run = await create(session_maker, spec(judges=[{"name": "judge-x", "orders": 1}]))
    fakes = Fakes(generate=RefusedText(gate=asyncio.Event()))
    stop = asyncio.Event()
    worker = start_worker(session_maker, fakes.executors(), stop, concurrency=6, claim_batch=6)

    await calls_made(fakes.generate, 6)
    assert fakes.generate.gate is not None
    fakes.generate.gate.set()  # all six finish at once

    async def settled() -> bool:
        return (await get(session_maker, run.id)).status in ("done_with_failures", "failed")

    await eventually(settled, within=30)
    stop.set()
    await asyncio.wait_for(worker, 5)
    done = await get(session_maker, run.id)
    assert nonzero(done, "generate") == {"done": 4, "failed": 2}
    assert nonzero(done, "judge") == {"done": 2, "failed": 1}
    assert await count(session_maker, Response) == 4
    assert await attempts_by_state(session_maker, run.id) == {"done": {1}, "failed": {3}}
    async with session_maker() as session:
        errors = set(await session.scalars(select(Task.error_type).where(Task.state == "failed")))
    assert errors == {"database_error", "dependency_failed"}


async def test_one_heartbeat_keeps_every_lease_in_flight(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=2)
    run = await create(session_maker, spec())
    fakes = Fakes()
    fakes.generate.gate = asyncio.Event()  # the calls hang until the test lets them go
    stop = asyncio.Event()
    first = start_worker(
        session_maker,
        fakes.executors(),
        stop,
        "first",
        concurrency=4,
        claim_batch=2,
        lease_seconds=0.3,
    )

    await calls_made(fakes.generate, 4)
    # Several leases long: without renewals the second worker would claim the tasks again.
    second = start_worker(
        session_maker,
        fakes.executors(),
        stop,
        "second",
        concurrency=4,
        claim_batch=2,
        lease_seconds=0.3,
    )
    await asyncio.sleep(1.5)
    assert len(fakes.generate.calls) == 4
    async with session_maker() as session:
        owners = set(await session.scalars(select(Task.lease_owner).where(Task.state == "running")))
    assert len(owners) == 1
    assert str(owners.pop()).startswith("first/")

    fakes.generate.gate.set()
    await eventually(lambda: run_done(session_maker, run.id))
    stop.set()
    await asyncio.gather(first, second)
    assert len(fakes.generate.calls) == 4
    assert await count(session_maker, Response) == 4


async def test_a_stop_finishes_and_settles_the_tasks_in_flight(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=6)
    run = await create(session_maker, spec())  # 12 generate
    fakes = Fakes()
    fakes.generate.gate = asyncio.Event()
    stop = asyncio.Event()
    worker = start_worker(session_maker, fakes.executors(), stop, concurrency=3, claim_batch=8)

    await calls_made(fakes.generate, 3)
    stop.set()  # while every slot is busy
    fakes.generate.gate.set()
    await asyncio.wait_for(worker, 5)

    # The three in flight were finished and stored; nothing was started after the stop, and
    # the task claimed ahead went back to the queue, its claim not counted as an attempt.
    assert len(fakes.generate.calls) == 3
    assert nonzero(await get(session_maker, run.id), "generate") == {"done": 3, "queued": 9}
    assert await attempts_by_state(session_maker, run.id) == {"done": {1}, "queued": {0}}
    assert await count(session_maker, Response) == 3


@dataclass
class OneAtATime(FakeGenerate):
    """Each call waits until the test lets it finish: ``release`` lets the oldest one go."""

    turns: list[asyncio.Event] = field(default_factory=list)

    async def execute(self, work: GenerateWork) -> GenerationResult:
        turn = asyncio.Event()
        self.turns.append(turn)
        await turn.wait()
        return await super().execute(work)


async def test_tasks_finishing_one_at_a_time_are_settled_together(
    session_maker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the settle window, while the reserve keeps every slot busy, the first task to
    finish waits for others, so four calls finishing 50 ms apart are marked done by one
    statement, not four."""
    await seed_dataset(session_maker, prompts=6)
    run = await create(session_maker, spec())  # 12 generate, 12 judge, 1 score
    completed: list[int] = []
    complete = queue.complete

    async def counted(*args: Any, **kwargs: Any) -> set[int]:
        completed.append(len(args[2]))
        return await complete(*args, **kwargs)

    monkeypatch.setattr(queue, "complete", counted)
    generate = OneAtATime()
    stop = asyncio.Event()
    worker = start_worker(
        session_maker,
        Fakes(generate=generate).executors(),
        stop,
        concurrency=4,
        claim_batch=4,
        settle_window=30.0,  # ends when the batch is complete, long before
    )

    async def four_waiting() -> bool:
        return len(generate.turns) == 4

    await eventually(four_waiting)
    for turn in generate.turns[:4]:
        turn.set()
        await asyncio.sleep(0.05)
    finishing = asyncio.create_task(let_every_call_finish(generate))
    await eventually(lambda: run_done(session_maker, run.id), within=20)
    stop.set()
    await asyncio.wait_for(worker, 5)
    finishing.cancel()
    assert completed[0] == 4
    assert await count(session_maker, Response) == 12


async def let_every_call_finish(generate: OneAtATime) -> None:
    while True:
        for turn in generate.turns:
            turn.set()
        await asyncio.sleep(0.01)


async def test_a_freed_slot_is_filled_from_the_reserve_before_the_settle(
    session_maker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two slots and a reserve of two: when a call finishes, the reserved task starts while the
    settle transaction (held up here) has yet to claim anything."""
    await seed_dataset(session_maker, prompts=3)
    run = await create(session_maker, spec())  # 6 generate, 6 judge, 1 score
    settling, may_settle = asyncio.Event(), asyncio.Event()
    complete = queue.complete

    async def held_up(*args: Any, **kwargs: Any) -> set[int]:
        settling.set()
        await may_settle.wait()
        return await complete(*args, **kwargs)

    monkeypatch.setattr(queue, "complete", held_up)
    generate = OneAtATime()
    stop = asyncio.Event()
    worker = start_worker(
        session_maker,
        Fakes(generate=generate).executors(),
        stop,
        concurrency=2,
        claim_batch=4,
        settle_window=0.0,
    )

    def waiting(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(generate.turns) == n

        return check

    await eventually(waiting(2))
    generate.turns[0].set()
    await asyncio.wait_for(settling.wait(), 10)
    await eventually(waiting(3))  # started from the reserve, the settle still held up
    assert not may_settle.is_set()

    may_settle.set()
    finishing = asyncio.create_task(let_every_call_finish(generate))
    await eventually(lambda: run_done(session_maker, run.id), within=20)
    stop.set()
    await asyncio.wait_for(worker, 5)
    finishing.cancel()
    assert len(generate.turns) == 6
    assert await count(session_maker, Response) == 6
    assert await attempts_by_state(session_maker, run.id) == {"done": {1}}
