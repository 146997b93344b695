"""The task figures the metrics refresher reads (``task_tally``) equal a full count of the tasks
table after every kind of change, while it counts again only what is active or changed; and on
PostgreSQL a steady reading reads no task outside the active runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from tests.gateway.runs.helpers import Sessions, at, create, seed_dataset, spec

from harmrank.gateway.db.run_models import Stage, Task, TaskState
from harmrank.gateway.runs import control, planner, queue, service, settle, task_repository
from harmrank.gateway.runs.tasks import Backoff, ClaimedTask, Completion, Failure
from harmrank.gateway.task_tally import TaskFigures, TaskTally, read

WORKER = "w1"
NO_JITTER = Backoff(jitter=False)

_FULL_COUNTS = "SELECT stage, state, count(*) FROM tasks GROUP BY stage, state"
_FULL_FAILED = """
SELECT t.stage, coalesce(m.name, ''), coalesce(a.name, ''), coalesce(t.error_type, ''), count(*)
FROM tasks AS t LEFT JOIN models AS m ON m.id = t.model_id
LEFT JOIN annotators AS a ON a.id = t.annotator_id
WHERE t.state = 'failed' GROUP BY 1, 2, 3, 4
"""
_FULL_OLDEST = "SELECT stage, min(created_at) FROM tasks WHERE state = 'queued' GROUP BY stage"


async def full_count(sessions: Sessions) -> TaskFigures:
    """The figures as a scan of the whole table finds them (what every reading did before)."""
    async with sessions() as session:
        counts = (await session.execute(text(_FULL_COUNTS))).all()
        failed = (await session.execute(text(_FULL_FAILED))).all()
        oldest = (await session.execute(text(_FULL_OLDEST))).all()
    return TaskFigures(
        counts={(stage, state): n for stage, state, n in counts},
        failed={(stage, model, judge, error): n for stage, model, judge, error, n in failed},
        oldest_queued={stage: _naive(at) for stage, at in oldest},
    )


def _naive(moment: datetime | str) -> datetime:
    # SQLite answers a raw min() as text; the comparison is of instants, whatever the zone.
    found = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return found.replace(tzinfo=None)


async def check(sessions: Sessions, tally: TaskTally) -> TaskFigures:
    """A reading with ``tally`` equals the full count; answers the reading."""
    async with sessions() as session:
        figures = await read(session, tally)
    expected = await full_count(sessions)
    assert figures.counts == expected.counts
    assert figures.failed == expected.failed
    oldest = {stage: _naive(at) for stage, at in figures.oldest_queued.items()}
    assert oldest == expected.oldest_queued
    return figures


async def claim(sessions: Sessions, now: float, limit: int = 100) -> list[ClaimedTask]:
    async with sessions.begin() as session:
        return await queue.claim(session, WORKER, now=at(now), lease_seconds=30, limit=limit)


async def complete(sessions: Sessions, tasks: Sequence[ClaimedTask], now: float) -> None:
    """Complete the tasks, every third as reused."""
    done = [Completion(t.id, reused=i % 3 == 2) for i, t in enumerate(tasks)]
    async with sessions.begin() as session:
        await queue.complete(session, WORKER, done, now=at(now))


async def fail(sessions: Sessions, task: ClaimedTask, now: float, *, transient: bool) -> None:
    failure = Failure("upstream_error", "made up", transient=transient)
    async with sessions.begin() as session:
        await settle.fail(session, task, WORKER, failure, now=at(now), backoff=NO_JITTER)


async def finish(sessions: Sessions, now: float) -> None:
    """Claim and complete tasks until none is ready (every run's, to its score task)."""
    while tasks := await claim(sessions, now):
        await complete(sessions, tasks, now)


async def resume(sessions: Sessions, run_id: int) -> None:
    async with sessions.begin() as session:
        await control.resume_run(session, run_id)


@pytest.fixture
async def tally() -> TaskTally:
    return TaskTally()


async def test_the_figures_equal_a_full_count_after_every_kind_of_change(
    session_maker: Sessions, tally: TaskTally
) -> None:
    sessions = session_maker
    await seed_dataset(sessions)
    await check(sessions, tally)  # nothing planned yet
    first = await create(sessions, spec())  # 12 generate, 12 judge, 1 score: planned
    await check(sessions, tally)
    claimed = await claim(sessions, 0, limit=6)  # six generate tasks running
    await check(sessions, tally)
    await complete(sessions, claimed[:3], 1)  # done, done, reused
    await check(sessions, tally)
    await fail(sessions, claimed[3], 2, transient=True)  # queued again, to retry
    await check(sessions, tally)
    await fail(sessions, claimed[4], 2, transient=False)  # failed for good: its judges too
    await check(sessions, tally)
    await finish(sessions, 1000)
    figures = await check(sessions, tally)
    assert figures.counts[Stage.SCORE, TaskState.DONE] == 1
    assert first.id in tally.at_rest  # kept: not counted again while it rests

    # A second run of the same spec, cancelled with a task running: queued ones cancelled at
    # once, the running one when its lease expires.
    second = await create(sessions, spec())
    await check(sessions, tally)
    running = await claim(sessions, 1000, limit=1)
    async with sessions.begin() as session:
        await control.cancel_run(session, second.id, now=at(1001))
    await check(sessions, tally)
    async with sessions.begin() as session:
        await settle.reap_expired(session, now=at(2000))
    figures = await check(sessions, tally)
    assert running
    assert figures.counts[Stage.SCORE, TaskState.CANCELLED] == 1
    assert second.id in tally.at_rest

    await resume(sessions, second.id)  # cancelled tasks queued again
    await check(sessions, tally)
    assert second.id not in tally.at_rest
    await finish(sessions, 3000)
    await check(sessions, tally)
    assert {first.id, second.id} <= set(tally.at_rest)


async def test_a_run_resumed_and_done_again_between_two_readings_is_counted_again(
    session_maker: Sessions, tally: TaskTally
) -> None:
    """The one change to a resting run's counts that no reading may see in progress: its
    resume count tells."""
    sessions = session_maker
    await seed_dataset(sessions)
    run = await create(sessions, spec())
    claimed = await claim(sessions, 0, limit=2)
    await fail(sessions, claimed[0], 1, transient=False)
    await complete(sessions, claimed[1:], 1)
    await finish(sessions, 10)
    before = await check(sessions, tally)
    assert run.id in tally.at_rest
    assert before.failed

    await resume(sessions, run.id)
    await finish(sessions, 20)  # the failed generation and its judges done this time
    figures = await check(sessions, tally)
    assert not figures.failed
    assert figures.counts != before.counts


@pytest.mark.parametrize("resumed", ["before the runs are listed", "after"])
async def test_a_resume_during_a_reading_is_counted_by_the_next(
    session_maker: Sessions, tally: TaskTally, monkeypatch: pytest.MonkeyPatch, resumed: str
) -> None:
    """A resume (and its tasks' whole work) committed while a reading runs, just before or
    just after it lists the runs: that reading may still show the run's old counts, the next
    one counts it again."""
    sessions = session_maker
    await seed_dataset(sessions)
    run = await create(sessions, spec())
    claimed = await claim(sessions, 0, limit=1)
    await fail(sessions, claimed[0], 1, transient=False)
    await finish(sessions, 10)
    await check(sessions, tally)
    assert run.id in tally.at_rest

    listed = task_repository.run_resumes

    async def listed_and_resumed(session: AsyncSession) -> dict[int, int | None]:
        found = await listed(session) if resumed == "after" else None
        await resume(sessions, run.id)
        await finish(sessions, 20)
        return found if found is not None else await listed(session)

    monkeypatch.setattr(task_repository, "run_resumes", listed_and_resumed)
    async with sessions() as session:
        await read(session, tally)
    monkeypatch.setattr(task_repository, "run_resumes", listed)
    figures = await check(sessions, tally)
    assert not figures.failed


async def test_a_deleted_run_leaves_the_figures(session_maker: Sessions, tally: TaskTally) -> None:
    sessions = session_maker
    await seed_dataset(sessions)
    kept, deleted = await create(sessions, spec()), await create(sessions, spec(max_attempts=2))
    await finish(sessions, 0)
    await check(sessions, tally)
    assert {kept.id, deleted.id} <= set(tally.at_rest)
    async with sessions.begin() as session:
        await session.execute(text("DELETE FROM runs WHERE id = :id"), {"id": deleted.id})
    figures = await check(sessions, tally)
    assert set(tally.at_rest) == {kept.id}
    assert sum(figures.counts.values()) == 25


async def test_a_reading_counts_again_only_the_active_or_changed_runs(
    session_maker: Sessions, tally: TaskTally
) -> None:
    sessions = session_maker
    await seed_dataset(sessions)
    resting = await create(sessions, spec())
    await finish(sessions, 0)
    active = await create(sessions, spec(max_attempts=2))
    await check(sessions, tally)
    asked = await runs_counted(sessions, tally)
    assert asked == [active.id], "a steady reading counts only the active run's tasks"
    assert resting.id in tally.at_rest


async def runs_counted(sessions: Sessions, tally: TaskTally) -> list[int]:
    """The run ids a reading counts the tasks of (from its statements' parameters)."""
    statements = await sent_by_reading(sessions, tally)
    found = set()
    for statement, parameters in statements:
        if _counts_runs(statement):
            found |= {v for v in _values(parameters) if isinstance(v, int)}
    return sorted(found)


def _counts_runs(statement: str) -> bool:
    """Whether the statement counts the tasks of runs it names."""
    grouped = "GROUP BY tasks.run_id, tasks.stage, tasks.state" in statement
    return grouped and "WHERE tasks.run_id IN" in statement


def _values(parameters: Any) -> list[Any]:
    return list(parameters.values() if isinstance(parameters, dict) else parameters)


async def sent_by_reading(sessions: Sessions, tally: TaskTally) -> list[tuple[str, Any]]:
    """The statements (with their parameters) one reading sends."""
    sent: list[tuple[str, Any]] = []

    def catch(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    async with sessions() as session:
        connection = await session.connection()
        event.listen(connection.sync_connection, "before_cursor_execute", catch)
        try:
            await read(session, tally)
        finally:
            event.remove(connection.sync_connection, "before_cursor_execute", catch)
    return sent


async def many_runs_at_rest(sessions: Sessions, copies: int) -> None:
    """A table of finished runs: one run of 500 prompts done, its tasks copied into ``copies``
    more runs (about 2,000 tasks each)."""
    await seed_dataset(sessions, prompts=500)
    run = await create(sessions, spec())
    async with sessions.begin() as session:
        await session.execute(update(Task).values(state=TaskState.DONE))
        columns = "key, stage, state, prompt_id, model_id, generation_key, annotator_id,"
        columns += " presentation_key, order_index, attempts, max_attempts"
        for _ in range(copies):
            copy = await session.execute(
                text(
                    "INSERT INTO runs (dataset_id, spec, resumes, planned_at)"
                    " SELECT dataset_id, spec, 0, planned_at FROM runs WHERE id = :id"
                    " RETURNING id"
                ),
                {"id": run.id},
            )
            await session.execute(
                text(
                    f"INSERT INTO tasks (run_id, {columns})"
                    f" SELECT :copy, {columns} FROM tasks WHERE run_id = :id"
                ),
                {"copy": copy.scalar_one(), "id": run.id},
            )


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_steady_reading_reads_no_task_outside_the_active_runs(
    session_maker: Sessions, tally: TaskTally
) -> None:
    """Under the statistics of a table of finished runs (40,000 tasks) and one run half done,
    every read of the tasks table goes through an index condition (no Seq Scan, no full index
    scan; before, each reading scanned the table three times), and the active run's count
    reads only its tasks not done."""
    sessions = session_maker
    await many_runs_at_rest(sessions, copies=20)
    active = await create(sessions, spec(max_attempts=2))
    async with sessions.begin() as session:
        half_done = update(Task).where(Task.run_id == active.id, Task.stage == Stage.GENERATE)
        await session.execute(half_done.values(state=TaskState.DONE))
        await (await session.connection()).exec_driver_sql("ANALYZE")
    await check(sessions, tally)  # the first reading counts every run
    await check(sessions, tally)  # the active run's sizes are known from here on
    rows_read = []
    for statement, plan in await plans(sessions, await sent_by_reading(sessions, tally)):
        for node in _nodes(plan):
            assert _bounded(node), (statement, node)
        if _counts_runs(statement):
            rows_read += [
                (n["Actual Rows"], n["Index Cond"]) for n in _nodes(plan) if "Index Cond" in n
            ]
    # The active run's count: its 500 x 2 judge tasks and its score task, not its 1,000 done,
    # found by searching the index for each stage and state (a condition on the state alone
    # is checked against every entry of the run).
    counted = [cond for rows, cond in rows_read if rows == 1001]
    assert counted, rows_read
    assert "stage = ANY" in counted[0], counted
    assert "state = ANY" in counted[0], counted


async def plans(
    sessions: Sessions, statements: list[tuple[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """EXPLAIN ANALYZE of each statement with its parameters."""
    found = []
    async with sessions() as session:
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        for statement, parameters in statements:
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"
            plan = await driver.fetchval(explain, *parameters)
            # The connection's codec decodes json already.
            plan = plan if isinstance(plan, list) else json.loads(plan)
            found.append((statement, plan[0]["Plan"]))
    return found


def _bounded(node: dict[str, Any]) -> bool:
    """Whether a plan node reads tasks through an index condition, or does not read tasks (a
    bitmap heap scan reads what its index scans below it found)."""
    if node["Node Type"] == "Bitmap Heap Scan":
        return True
    on_tasks = node.get("Relation Name") == "tasks" or "tasks" in node.get("Index Name", "")
    return not on_tasks or "Index Cond" in node


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan] + [n for child in plan.get("Plans", []) for n in _nodes(child)]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_run_whose_tasks_are_being_written_is_counted_whole_until_planned(
    session_maker: Sessions, tally: TaskTally, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its head done before its rest is written: at rest for a moment, it must not be kept,
    nor its tasks per stage, which its rest adds to."""
    sessions = session_maker
    monkeypatch.setattr(planner, "HEAD_PROMPTS", 2)
    await seed_dataset(sessions, prompts=6)
    async with sessions() as session:
        run_id, _ = await service._plan_head(session, spec(), None, None)
        await session.commit()
    await check(sessions, tally)
    for moment in range(3):  # the head's generations, then its judgments, done
        await complete(sessions, await claim(sessions, moment), moment + 0.5)
    await check(sessions, tally)
    async with sessions.begin() as session:
        assert await planner.plan_rest(session, run_id)
    await check(sessions, tally)
    await complete(sessions, await claim(sessions, 10), 10.5)
    await check(sessions, tally)
