"""Batches: a loop claims several tasks at once, works them concurrently, settles them together."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

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
from harmrank.gateway.db.run_models import Task
from harmrank.gateway.runs.queue import Backoff, TaskFailed
from harmrank.gateway.runs.work import GenerateWork
from harmrank.gateway.runs.worker import run_worker


async def count(sessions: Sessions, table: type[Response] | type[Ranking]) -> int:
    async with sessions() as session:
        return (await session.scalar(select(func.count()).select_from(table))) or 0


def start_worker(
    sessions: Sessions,
    fakes: Fakes,
    stop: asyncio.Event,
    name: str,
    *,
    claim_batch: int,
    lease_seconds: float = 5.0,
) -> asyncio.Task[None]:
    return asyncio.create_task(
        run_worker(
            sessions,
            fakes.executors(),
            worker_id=name,
            concurrency=2,
            claim_batch=claim_batch,
            poll_interval=0.02,
            lease_seconds=lease_seconds,
            stop_event=stop,
            backoff=Backoff(base_seconds=0.01, max_seconds=0.05),
        )
    )


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_racing_workers_claim_each_task_of_their_batches_once(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=20)
    run = await create(session_maker, spec())  # 40 generate, 40 judge, 1 score
    fakes = Fakes()  # shared: its calls are every worker's calls
    stop = asyncio.Event()
    workers = [start_worker(session_maker, fakes, stop, f"w{i}", claim_batch=5) for i in range(3)]

    async def settled() -> bool:
        return (await get(session_maker, run.id)).status == "done"

    await eventually(settled, within=60)
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


async def test_a_failing_task_leaves_the_rest_of_its_batch_stored(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=3)
    run = await create(session_maker, spec(judges=[{"name": "judge-x", "orders": 1}]))
    fakes = Fakes()
    fakes.generate.failures["small-a/p1"] = [
        TaskFailed("generation_validation", "input too long", transient=False)
    ]

    # One loop, one batch: the six generate tasks are claimed and settled together.
    done = await work_until_settled(
        session_maker, fakes.executors(), run.id, concurrency=1, claim_batch=6
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
async def test_a_result_the_database_refuses_fails_alone(session_maker: Sessions) -> None:
    """The group's transaction fails; its tasks are then stored one by one, so only the one
    that cannot be stored fails (as a database error, retried up to its attempts)."""
    await seed_dataset(session_maker, prompts=3)
    run = await create(session_maker, spec(judges=[{"name": "judge-x", "orders": 1}]))
    fakes = Fakes(generate=RefusedText())

    done = await work_until_settled(
        session_maker, fakes.executors(), run.id, concurrency=1, claim_batch=6
    )

    assert nonzero(done, "generate") == {"done": 4, "failed": 2}
    assert nonzero(done, "judge") == {"done": 2, "failed": 1}
    assert await count(session_maker, Response) == 4
    async with session_maker() as session:
        errors = set(await session.scalars(select(Task.error_type).where(Task.state == "failed")))
    assert errors == {"database_error", "dependency_failed"}


async def test_a_batch_s_heartbeat_keeps_all_its_leases(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=2)
    run = await create(session_maker, spec())
    fakes = Fakes()
    fakes.generate.gate = asyncio.Event()  # the calls hang until the test lets them go
    stop = asyncio.Event()
    first = start_worker(session_maker, fakes, stop, "first", claim_batch=4, lease_seconds=0.3)

    async def all_running() -> bool:
        return len(fakes.generate.calls) == 4

    await eventually(all_running)
    # Several leases long: without renewals the second worker would claim the tasks again.
    second = start_worker(session_maker, fakes, stop, "second", claim_batch=4, lease_seconds=0.3)
    await asyncio.sleep(1.5)
    assert len(fakes.generate.calls) == 4
    async with session_maker() as session:
        owners = set(await session.scalars(select(Task.lease_owner).where(Task.state == "running")))
    assert {owner.partition("/")[0] for owner in owners if owner} == {"first"}

    fakes.generate.gate.set()

    async def finished() -> bool:
        return (await get(session_maker, run.id)).status == "done"

    await eventually(finished)
    stop.set()
    await asyncio.gather(first, second)
    assert len(fakes.generate.calls) == 4
    assert await count(session_maker, Response) == 4
