"""How PostgreSQL runs the claim and the status read of a big run: their cost must not grow
with the tasks table.

A claim checks each judge task it considers for pending generate tasks of its prompt. Found by
reading the whole tasks table, that check made every claim O(tasks in the database) and a
50,000-prompt run's judgments three times slower than its generations (bench/scale_run.py).
The same went for each score task it considers, whose run must have no work left to do
(bench/claim_readiness.py).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from tests.gateway.runs.helpers import Sessions, at, create, seed_dataset, spec
from tests.gateway.runs.plans import CUSTOM, GENERIC, explain, sent_statement

from harmrank.gateway.db.run_models import Stage, Task, TaskState
from harmrank.gateway.runs import failures, queue


async def claim_plan(sessions: Sessions, mode: str = GENERIC) -> str:
    """The plan of the ready-task claim as a worker sends it."""
    return await generic_plan(
        sessions,
        lambda session: queue.claim(session, "w1", now=at(0), lease_seconds=30, limit=16),
        "UPDATE tasks SET state",
        mode,
    )


async def generic_plan(
    sessions: Sessions,
    call: Callable[[AsyncSession], Awaitable[object]],
    starts: str,
    mode: str = GENERIC,
) -> str:
    """EXPLAIN of the first statement ``call`` sends that starts so (see ``plans.explain``)."""
    sent = await sent_statement(sessions, call, starts)
    async with sessions() as session:
        return await explain(await session.connection(), sent, mode)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_judge_claim_reads_the_pending_generate_tasks_not_the_table(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=2000)
    await create(session_maker, spec())  # 4,000 generate tasks, 4,000 judge tasks, planned
    async with session_maker.begin() as session:
        await session.execute(
            update(Task).where(Task.stage == Stage.GENERATE).values(state=TaskState.DONE)
        )
    async with session_maker.begin() as session:  # statistics are transactional: committed
        await (await session.connection()).exec_driver_sql("ANALYZE tasks")
    plan = await claim_plan(session_maker)
    # The judge check's alias is "other" (the score's, "other_1", reads the run's tasks once,
    # when the last judgments are claimed).
    assert "ix_tasks_pending_generate" in plan, plan
    assert not re.search(r"Seq Scan on tasks other\b(?!_)", plan), plan


async def mid_run(sessions: Sessions) -> None:
    """A run of 2,000 prompts (8,001 tasks) three quarters done, on the statistics of its
    planning, when every task was queued: a run finishes its tasks far faster than autovacuum
    analyzes the table again (at most once a minute)."""
    await seed_dataset(sessions, prompts=2000)
    await create(sessions, spec())  # analyzes the table
    async with sessions.begin() as session:
        connection = await session.connection()
        # Nothing may analyze the table again behind the test's back.
        await connection.exec_driver_sql("ALTER TABLE tasks SET (autovacuum_enabled = false)")
        # Every generation and three quarters of the judgments done.
        await session.execute(
            update(Task)
            .where(
                (Task.stage == Stage.GENERATE) | ((Task.stage == Stage.JUDGE) & (Task.id < 7000))
            )
            .values(state=TaskState.DONE)
        )


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("mode", [GENERIC, CUSTOM])
async def test_a_claim_mid_run_walks_the_queued_tasks_whatever_the_statistics_say(
    session_maker: Sessions, mode: str
) -> None:
    """On the statistics of the run's planning, the claim walked the primary key from the
    first task and filtered out every finished one, and hashed the run's pending generate
    tasks out of a scan of the whole table: each claim cost O(tasks), 2.4 ms in a 4,000-task
    run 85% done (EXPLAIN ANALYZE)."""
    await mid_run(session_maker)
    plan = await claim_plan(session_maker, mode)
    assert "Index Scan using ix_tasks_queued_id on tasks candidate" in plan, plan
    # The judge's check probes its prompt's pending generate tasks, candidate by candidate.
    probe = "Index Cond: ((run_id = candidate.run_id) AND (prompt_id = candidate.prompt_id))"
    assert probe in plan, plan
    assert "Seq Scan on tasks" not in plan, plan


async def tail_among_finished_runs(sessions: Sessions) -> None:
    """A finished run of 2,000 prompts (8,001 tasks), then two runs of 200 prompts in flight,
    on the statistics of the second one's planning: the first at its tail (its judgments done
    but two still running), the second just started."""
    await seed_dataset(sessions, name="big", prompts=2000)
    await seed_dataset(sessions, name="small", prompts=200)
    finished = await create(sessions, spec(prompts={"dataset": "big"}))
    async with sessions.begin() as session:
        await session.execute(
            update(Task).where(Task.run_id == finished.id).values(state=TaskState.DONE)
        )
    tail = await create(sessions, spec(prompts={"dataset": "small"}))
    await create(sessions, spec(prompts={"dataset": "small"}))
    async with sessions.begin() as session:
        connection = await session.connection()
        await connection.exec_driver_sql("ALTER TABLE tasks SET (autovacuum_enabled = false)")
        work = Task.stage != Stage.SCORE
        await session.execute(
            update(Task).where(Task.run_id == tail.id, work).values(state=TaskState.DONE)
        )
        last = select(Task.id).where(Task.run_id == tail.id, work)
        await session.execute(
            update(Task)
            .where(Task.id.in_(last.order_by(Task.id.desc()).limit(2)))
            .values(state=TaskState.RUNNING, lease_owner="w2", lease_expires_at=at(30))
        )


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("mode", [GENERIC, CUSTOM])
@pytest.mark.parametrize("runs", [mid_run, tail_among_finished_runs])
async def test_a_score_check_probes_its_runs_work_to_do_whatever_the_statistics_say(
    session_maker: Sessions, mode: str, runs: Callable[[Sessions], Awaitable[None]]
) -> None:
    """Whenever a claim's walk reaches a run's score task, which with several runs in flight is
    every claim, it checks that no generate or judge task of the run is queued or running. On
    the statistics of a run's planning (every task queued) that check read the tasks table up
    to the first task still to do, the whole table once the run's work was done: a claim of 16
    took 40 ms at 108,000 tasks and 260 ms at 308,000 (bench/claim_readiness.py)."""
    await runs(session_maker)
    plan = await claim_plan(session_maker, mode)
    assert re.search(r"Index (Only )?Scan using ix_tasks_work_to_do on tasks other", plan), plan
    # From the run, in run order, to the run: the first entry answers.
    probe = "Index Cond: ((run_id >= candidate.run_id) AND (run_id <= candidate.run_id))"
    assert probe in plan, plan
    assert "Seq Scan on tasks" not in plan, plan


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgresql_keeps_one_plan_for_a_workers_claims(session_maker: Sessions) -> None:
    """A prepared statement is planned for its parameters on every execution until a plan for
    any parameters looks no costlier; the claim's must, or every claim pays for its planning
    (a third of its database CPU)."""
    await mid_run(session_maker)
    async with session_maker() as session:
        for _ in range(8):  # PostgreSQL weighs a generic plan from the sixth execution on
            await queue.claim(session, "w1", now=at(0), lease_seconds=30, limit=8)
            await session.rollback()
        plans = await session.execute(
            text(
                "SELECT generic_plans FROM pg_prepared_statements"
                " WHERE statement LIKE 'UPDATE tasks SET state%FROM tasks AS candidate%'"
            )
        )
        assert plans.scalar_one() > 0


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_run_status_reads_its_failing_tasks_not_all_its_tasks(
    session_maker: Sessions,
) -> None:
    """Every read of a run's status groups its failing tasks; a scan of all its tasks made each
    poll of a 20,000-prompt run cost 36 ms of the database."""
    await seed_dataset(session_maker, prompts=2000)
    run = await create(session_maker, spec())
    async with session_maker.begin() as session:
        await (await session.connection()).exec_driver_sql("ANALYZE tasks")
    plan = await generic_plan(
        session_maker, lambda session: failures.failure_groups(session, run.id), "SELECT"
    )
    assert "ix_tasks_failing" in plan, plan
    assert "Seq Scan on tasks" not in plan, plan
