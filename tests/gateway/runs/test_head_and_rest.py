"""On PostgreSQL a run is planned in two transactions (``planner.plan_run``): its head, the
tasks of its first prompts, committed so that workers start on it; then its rest. A run whose
gateway stopped in between is whole again by a worker or a resume, and never looks finished
meanwhile."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from tests.gateway.runs.helpers import (
    Fakes,
    Sessions,
    create,
    get,
    nonzero,
    seed_dataset,
    spec,
    work_until_settled,
)

from harmrank.gateway.db.base import utc_now
from harmrank.gateway.db.run_models import Run, RunPrompt, Task
from harmrank.gateway.runs import planner, queue, service
from harmrank.gateway.runs.schemas import RunCreate, RunOut
from harmrank.gateway.runs.tasks import Completion

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

PROMPTS = 10
HEAD = 4
"""Prompts whose tasks the head holds here (``spec()``: 2 models, a judge in 2 orders)."""


@pytest.fixture(autouse=True)
def small_head(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "HEAD_PROMPTS", HEAD)


async def head_only(sessions: Sessions, body: RunCreate) -> int:
    """Plan and commit a run's head, and no more: as if its gateway stopped there."""
    async with sessions() as session:
        run_id, created = await service._plan_head(session, body, None, None)
        await session.commit()
    assert created
    return run_id


async def age(sessions: Sessions, run_id: int, by: timedelta) -> None:
    async with sessions.begin() as session:
        created = await session.scalar(select(Run.created_at).where(Run.id == run_id))
        assert created is not None
        await session.execute(update(Run).where(Run.id == run_id).values(created_at=created - by))


async def planned_at(sessions: Sessions, run_id: int) -> object:
    async with sessions() as session:
        return await session.scalar(select(Run.planned_at).where(Run.id == run_id))


def counts(run: RunOut) -> dict[str, dict[str, int]]:
    return {stage: nonzero(run, stage) for stage in ("generate", "judge", "score")}


WHOLE = {
    "generate": {"queued": PROMPTS * 2},
    "judge": {"queued": PROMPTS * 2},
    "score": {"queued": 1},
}


async def test_the_head_is_committed_before_the_rest_is_written(
    session_maker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen from another connection while the rest is about to be written: the head's tasks
    alone, the run queued (not finished, though it has no score task yet)."""
    await seed_dataset(session_maker, prompts=PROMPTS)
    seen: list[RunOut] = []
    write_rest = planner.plan_rest

    async def watched(session: AsyncSession, run_id: int) -> bool:
        seen.append(await get(session_maker, run_id))
        return await write_rest(session, run_id)

    monkeypatch.setattr(service, "plan_rest", watched)
    judges = [{"name": "judge-x", "orders": 2, "settings": {"temperature": 0.5}}]
    run = await create(session_maker, spec(judges=judges))
    [before] = seen
    assert counts(before) == {
        "generate": {"queued": HEAD * 2},
        "judge": {"queued": HEAD * 2},
        "score": {},
    }
    assert before.status == "queued"
    assert before.stalled is None
    assert counts(run) == WHOLE
    assert await planned_at(session_maker, run.id) is not None
    # Claimed in id order: the head's generations first.
    async with session_maker() as session:
        first = await session.scalars(
            select(Task.prompt_id).where(Task.run_id == run.id).order_by(Task.id).limit(HEAD * 2)
        )
        order = select(RunPrompt.prompt_id).where(RunPrompt.run_id == run.id)
        prompts = await session.scalars(order.order_by(RunPrompt.position))
        assert set(first) == set(list(prompts)[:HEAD])
        # The rest, planned from the stored spec, has the head's result keys.
        keys = select(Task.model_id, Task.order_index, Task.generation_key, Task.presentation_key)
        found = (await session.execute(keys.where(Task.run_id == run.id).distinct())).all()
        assert len(found) == 2 + 2 + 1  # per model, per order, the score


async def test_a_small_run_is_planned_whole_in_one_transaction(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=HEAD)
    run_id = await head_only(session_maker, spec())
    assert await planned_at(session_maker, run_id) is not None
    assert counts(await get(session_maker, run_id)) == {
        "generate": {"queued": HEAD * 2},
        "judge": {"queued": HEAD * 2},
        "score": {"queued": 1},
    }


async def test_a_run_left_half_planned_is_finished_by_a_worker(session_maker: Sessions) -> None:
    """Its gateway stopped between the head and the rest: the run says why it waits once it
    is a minute old, and a worker writes the rest, after which it runs to its report."""
    await seed_dataset(session_maker, prompts=PROMPTS)
    run_id = await head_only(session_maker, spec())
    young = await get(session_maker, run_id)
    assert young.status == "queued"
    assert young.stalled is None
    await age(session_maker, run_id, planner.PLANNING_GRACE + timedelta(seconds=5))
    old = await get(session_maker, run_id)
    assert old.stalled is not None
    assert "not all written" in old.stalled

    done = await work_until_settled(session_maker, Fakes().executors(), run_id, within=30)
    assert done.status == "done"
    assert counts(done) == {
        "generate": {"done": PROMPTS * 2},
        "judge": {"done": PROMPTS * 2},
        "score": {"done": 1},
    }
    assert done.has_report


async def test_a_worker_leaves_a_young_run_or_one_being_written_alone(
    session_maker: Sessions,
) -> None:
    """A minute's grace covers the moment between the head's commit and the rest's lock; the
    rest being written holds that lock, so no worker writes it too."""
    await seed_dataset(session_maker, prompts=PROMPTS)
    run_id = await head_only(session_maker, spec())
    async with session_maker() as session:
        assert await planner.finish_half_planned(session, now=utc_now()) == {}
    later = utc_now() + planner.PLANNING_GRACE + timedelta(seconds=5)
    async with session_maker() as writing:
        assert await planner.plan_rest(writing, run_id)
        async with session_maker() as worker:
            assert await planner.finish_half_planned(worker, now=later) == {}
        await writing.commit()
    async with session_maker() as session:
        assert await planner.finish_half_planned(session, now=later) == {}
    assert counts(await get(session_maker, run_id)) == WHOLE


async def test_a_resume_writes_the_rest_of_a_run_left_half_planned(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=PROMPTS)
    run_id = await head_only(session_maker, spec())
    async with session_maker.begin() as session:
        resumed = await service.resume_run(session, run_id)
    assert counts(resumed) == WHOLE
    assert await planned_at(session_maker, run_id) is not None


async def test_a_run_cancelled_before_its_rest_gets_its_rest_cancelled(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=PROMPTS)
    run_id = await head_only(session_maker, spec())
    async with session_maker.begin() as session:
        await service.cancel_run(session, run_id)
    async with session_maker.begin() as session:
        assert await planner.plan_rest(session, run_id)
    run = await get(session_maker, run_id)
    assert run.status == "cancelled"
    assert counts(run) == {
        "generate": {"cancelled": PROMPTS * 2},
        "judge": {"cancelled": PROMPTS * 2},
        "score": {"cancelled": 1},
    }
    async with session_maker() as session:
        unfinished = select(func.count()).where(Task.run_id == run_id, Task.finished_at.is_(None))
        assert await session.scalar(unfinished) == 0


async def test_a_replay_of_a_run_whose_rest_is_being_written_answers_it_as_it_stands(
    session_maker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idempotency key is committed with the head: a retry meanwhile finds the run."""
    await seed_dataset(session_maker, prompts=PROMPTS)
    replays: list[tuple[RunOut, bool]] = []
    write_rest = planner.plan_rest

    async def retried(session: AsyncSession, run_id: int) -> bool:
        replays.append(await service.create_run(session_maker, spec(), "key-1"))
        return await write_rest(session, run_id)

    monkeypatch.setattr(service, "plan_rest", retried)
    run, created = await service.create_run(session_maker, spec(), "key-1")
    [(replayed, again)] = replays
    assert created
    assert not again
    assert replayed.id == run.id
    assert replayed.status == "queued"
    assert counts(run) == WHOLE


async def test_a_run_whose_head_is_done_before_its_rest_is_written_is_running(
    session_maker: Sessions,
) -> None:
    """Every task written so far done, and no score task yet: by its tasks alone the run
    would be failed (never scored)."""
    await seed_dataset(session_maker, prompts=PROMPTS)
    run_id = await head_only(session_maker, spec())
    for _ in range(2):  # the head's generations, then its judgments
        async with session_maker.begin() as session:
            claimed = await queue.claim(
                session, "w", now=utc_now(), lease_seconds=30, limit=PROMPTS * 4
            )
            await queue.complete(session, "w", [Completion(t.id) for t in claimed], now=utc_now())
    run = await get(session_maker, run_id)
    assert counts(run) == {"generate": {"done": HEAD * 2}, "judge": {"done": HEAD * 2}, "score": {}}
    assert run.status == "running"


async def test_a_run_that_cannot_be_planned_stops_neither_the_others_nor_the_claim(
    session_maker: Sessions,
) -> None:
    """Each rest is written in a savepoint of the worker's claim transaction."""
    await seed_dataset(session_maker, prompts=PROMPTS)
    broken, whole = await head_only(session_maker, spec()), await head_only(session_maker, spec())
    async with session_maker.begin() as session:
        await session.execute(update(Run).where(Run.id == broken).values(spec={"models": 1}))
    later = utc_now() + planner.PLANNING_GRACE + timedelta(seconds=5)
    async with session_maker.begin() as session:
        outcome = await planner.finish_half_planned(session, now=later)
        assert list(outcome) == [broken, whole]
        assert outcome[whole] is None
        assert "validation error" in str(outcome[broken])
        assert await queue.claim(session, "w", now=later, lease_seconds=30, limit=1)
    assert counts(await get(session_maker, whole))["score"] == {"queued": 1}
    assert await planned_at(session_maker, broken) is None
