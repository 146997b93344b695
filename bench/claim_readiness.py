"""The ready-task claim in a big tasks table: its plan and time, as the table grows (issue #21).

Run: ``uv run python bench/claim_readiness.py`` (about a minute; PostgreSQL at
$HARMRANK_TEST_POSTGRES_URL, default ``postgresql://postgres@127.0.0.1:5432/postgres``, where
the user may CREATE DATABASE).

Per size, a throwaway database migrated by Alembic holds ``--finished`` finished runs of
``--prompts`` prompts each (2 models, one judge with 2 orders: 4 tasks a prompt, made by the
real planning, then marked done) and two runs of 1,000 prompts in flight, planned last, so the
statistics are those of the second one's planning (``queue.refresh_statistics``; autovacuum is
then turned off for the table so nothing analyzes it behind the figures' back):

- run A near its tail: every generation done, its judgments done but 16 still running; its
  score task is queued, not ready, and has the run's highest id;
- run B half way: its generations done, half of its judgments done, the rest queued.

Every claim walks the queued tasks in id order and so passes A's score task, and checks whether
A's generate or judge work is done. Figures: ``EXPLAIN (ANALYZE, BUFFERS)`` of the claim of 16
tasks exactly as the worker sends it (generic plan, rolled back), median execution time of
``--repeats`` and the score check's part of the plan; then again once A's 16 judgments are
done, when the check finds no pending work (the claim takes A's score task).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# The repository's tests/ helpers, ahead of the `tests` package ppi-python installs.
import repo_tests

sys.path.insert(0, str(repo_tests.ROOT))
import argparse
import asyncio
import re
import statistics

from sqlalchemy import Select, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from tests.conftest import throwaway_postgres_database
from tests.gateway.runs.helpers import at, create, seed_dataset, spec
from tests.gateway.runs.plans import GENERIC, explain, sent_statement

from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.migrate import upgrade_async
from harmrank.gateway.db.run_models import Stage, Task, TaskState
from harmrank.gateway.runs import queue

IN_FLIGHT_PROMPTS = 1000
RUNNING = 16


async def _fill(engine: AsyncEngine, finished: int, prompts: int) -> None:
    """The runs described in the module's docstring."""
    sessions = session_factory(engine)
    await seed_dataset(sessions, name="big", prompts=prompts)
    await seed_dataset(sessions, name="small", prompts=IN_FLIGHT_PROMPTS)
    for _ in range(finished):
        run = await create(sessions, spec(prompts={"dataset": "big"}))
        async with sessions.begin() as session:
            await session.execute(
                update(Task).where(Task.run_id == run.id).values(state=TaskState.DONE)
            )
    if finished:
        # Finished long ago: vacuumed since (their dead index entries in ix_tasks_queued_id
        # would make the walk, not the readiness check, the cost).
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM tasks")
    small = spec(prompts={"dataset": "small"})
    tail, half = await create(sessions, small), await create(sessions, small)
    async with sessions.begin() as session:
        connection = await session.connection()
        await connection.exec_driver_sql("ALTER TABLE tasks SET (autovacuum_enabled = false)")
        running = _judgments(tail.id).order_by(Task.id.desc()).limit(RUNNING)
        await session.execute(
            update(Task)
            .where(Task.run_id == tail.id, Task.stage != Stage.SCORE, Task.id.not_in(running))
            .values(state=TaskState.DONE)
        )
        await session.execute(
            update(Task)
            .where(Task.id.in_(running))
            .values(state=TaskState.RUNNING, lease_owner="elsewhere", lease_expires_at=at(600))
        )
        # Half of its judgments: 2 orders a prompt.
        first_half = _judgments(half.id).order_by(Task.id).limit(IN_FLIGHT_PROMPTS)
        generations = (Task.run_id == half.id) & (Task.stage == Stage.GENERATE)
        await session.execute(
            update(Task).where(generations | Task.id.in_(first_half)).values(state=TaskState.DONE)
        )


def _judgments(run_id: int) -> Select[int]:
    return select(Task.id).where(Task.run_id == run_id, Task.stage == Stage.JUDGE)


async def _measure(url: str, finished: int, prompts: int, repeats: int, show: bool) -> None:
    engine = create_engine(url)
    try:
        await upgrade_async(engine)
        await _fill(engine, finished, prompts)
        sessions = session_factory(engine)
        async with sessions() as session:
            tasks = (await session.execute(text("SELECT count(*) FROM tasks"))).scalar_one()
        print(f"{finished} finished runs, {tasks:,} tasks:")
        await _claims(sessions, "A waits for 16 judgments", repeats, show)
        async with sessions.begin() as session:
            await session.execute(
                update(Task).where(Task.state == TaskState.RUNNING).values(state=TaskState.DONE)
            )
        await _claims(sessions, "A's work done (its score is claimed)", repeats, show)
    finally:
        await engine.dispose()


async def _claims(
    sessions: async_sessionmaker[AsyncSession], state: str, repeats: int, show: bool
) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim of 16, ``repeats`` times, each rolled back."""
    sent = await sent_statement(
        sessions,
        lambda session: queue.claim(session, "w1", now=at(0), lease_seconds=30, limit=16),
        "UPDATE tasks SET state",
    )
    times, plan = [], ""
    async with sessions() as session:
        for _ in range(repeats):
            plan = await explain(await session.connection(), sent, GENERIC, "ANALYZE, BUFFERS")
            await session.rollback()
            found = re.search(r"Execution Time: ([\d.]+) ms", plan)
            assert found, plan
            times.append(float(found.group(1)))
    print(
        f"  {state}: claim of 16 median {statistics.median(times):.2f} ms"
        f" (min {min(times):.2f}) over {repeats}"
    )
    print(plan if show else _score_check(plan))


def _score_check(plan: str) -> str:
    """The plan's lines from the score check's subplan (alias other_1) to the next node of the
    walk, with the rows and buffers it read."""
    lines = plan.splitlines()
    start = next((i for i, line in enumerate(lines) if "other_1" in line), None)
    if start is None:
        return "  (no step on other_1 in the plan)"
    return "\n".join(lines[max(start - 2, 0) : start + 6])


async def main(args: argparse.Namespace) -> None:
    for finished in args.finished:
        async with throwaway_postgres_database() as url:
            await _measure(url, finished, args.prompts, args.repeats, args.plan)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--finished", type=int, nargs="+", default=[0, 1, 3])
    parser.add_argument("--prompts", type=int, default=25_000, help="prompts of a finished run")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--plan", action="store_true", help="print the whole last plan")
    asyncio.run(main(parser.parse_args()))
