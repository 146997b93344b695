"""A result is stored once: two runs that queue the same natural keys, and a repeated store."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from tests.gateway.runs.helpers import (
    FINAL,
    Fakes,
    Sessions,
    create,
    eventually,
    get,
    seed_dataset,
    spec,
)

from harmrank.gateway.db.models import Model, Prompt, Ranking, Response
from harmrank.gateway.db.run_models import Task
from harmrank.gateway.runs.tasks import Backoff
from harmrank.gateway.runs.work import Made, store_made
from harmrank.gateway.runs.worker import run_worker


async def work_until_both_settle(sessions: Sessions, fakes: Fakes, run_ids: list[int]) -> None:
    stop = asyncio.Event()

    async def settled() -> bool:
        return all([(await get(sessions, r)).status in FINAL for r in run_ids])

    async def watch() -> None:
        await eventually(settled, within=60)
        stop.set()

    async with asyncio.timeout(60), asyncio.TaskGroup() as group:
        for worker in ("w1", "w2"):
            group.create_task(
                run_worker(
                    sessions,
                    fakes.executors(),
                    worker_id=worker,
                    concurrency=3,
                    claim_batch=4,
                    poll_interval=0.02,
                    lease_seconds=5.0,
                    stop_event=stop,
                    backoff=Backoff(base_seconds=0.01, max_seconds=0.05),
                )
            )
        group.create_task(watch())


async def duplicate_keys(sessions: Sessions) -> dict[str, int]:
    """Natural keys stored more than once, per table."""
    keys = {
        "responses": (Response.prompt_id, Response.model_id, Response.generation_key),
        "rankings": (Ranking.annotator_id, Ranking.prompt_id, Ranking.presentation_key),
    }
    found: dict[str, int] = {}
    async with sessions() as session:
        for name, columns in keys.items():
            grouped = select(*columns).group_by(*columns).having(func.count() > 1).subquery()
            found[name] = await session.scalar(select(func.count()).select_from(grouped)) or 0
    return found


async def test_two_runs_queuing_the_same_results_store_each_once(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=3)
    # Both planned before any worker runs: each run queues its own tasks for the same keys.
    first = await create(session_maker, spec())
    second = await create(session_maker, spec(metrics={"p": 0.8, "resamples": 10, "seed": 2}))
    assert first.id != second.id

    await work_until_both_settle(session_maker, Fakes(), [first.id, second.id])

    for run_id in (first.id, second.id):
        assert (await get(session_maker, run_id)).status == "done"
    async with session_maker() as session:
        attempts = list(await session.scalars(select(Task.attempts).where(Task.state == "done")))
        responses = await session.scalar(select(func.count()).select_from(Response))
        rankings = await session.scalar(select(func.count()).select_from(Ranking))
    assert attempts
    assert set(attempts) == {1}
    assert await duplicate_keys(session_maker) == {"responses": 0, "rankings": 0}
    assert responses == 3 * 2  # prompts x models, whichever run stored them
    assert rankings == 3 * 2  # prompts x judge orders


async def test_storing_the_same_rows_twice_leaves_one_and_raises_nothing(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=1)
    async with session_maker.begin() as session:
        model = Model(name="small-a", display_name="small-a", position=0)
        session.add(model)
        await session.flush()
        prompt_id = await session.scalar(select(Prompt.id))
        model_id = model.id
    row = {
        "prompt_id": prompt_id,
        "model_id": model_id,
        "generation_key": "k1",
        "text": "a response",
        "source": "test",
    }
    made = [Made(Response, row, {})]
    for _ in range(2):
        async with session_maker.begin() as session:
            await store_made(session, made)
    async with session_maker() as session:
        assert await session.scalar(select(func.count()).select_from(Response)) == 1
