"""Run pages count the tasks of their own runs only, and the status filter pages right."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from tests.gateway.runs.helpers import Sessions, create, seed_dataset, spec

from harmrank.gateway.db.run_models import RunReport, Task
from harmrank.gateway.runs import repository, service, status
from harmrank.gateway.runs.schemas import RunOut, RunPage, RunStatus

# Task states per stage that make each status (the rules in runs/status.py).
MIXES: dict[RunStatus, dict[str, str]] = {
    "queued": {"generate": "queued", "judge": "queued", "score": "queued"},
    "running": {"generate": "running", "judge": "queued", "score": "queued"},
    "done": {"generate": "done", "judge": "done", "score": "done"},
    "cancelled": {"generate": "done", "judge": "cancelled", "score": "cancelled"},
    "failed": {"generate": "done", "judge": "done", "score": "failed"},
}
# Oldest first; several runs share a status, so filtered pages skip runs between matches.
STATUSES: list[RunStatus] = [
    "done",
    "queued",
    "running",
    "done",
    "failed",
    "cancelled",
    "done",
    "running",
    "done",
]


async def _runs(sessions: Sessions) -> dict[int, RunStatus]:
    await seed_dataset(sessions)
    made: dict[int, RunStatus] = {}
    for wanted in STATUSES:
        run_id = (await create(sessions, spec())).id
        async with sessions.begin() as session:
            for stage, state in MIXES[wanted].items():
                await session.execute(
                    update(Task)
                    .where(Task.run_id == run_id, Task.stage == stage)
                    .values(state=state)
                )
        made[run_id] = wanted
    return made


async def _counts(sessions: Sessions, run_id: int) -> dict[tuple[str, str], int]:
    async with sessions() as session:
        found = await session.execute(
            select(Task.stage, Task.state, func.count())
            .where(Task.run_id == run_id)
            .group_by(Task.stage, Task.state)
        )
        return {(str(stage), str(state)): int(n) for stage, state, n in found}


async def _pages(sessions: Sessions, wanted: RunStatus | None, limit: int) -> list[RunPage]:
    pages: list[RunPage] = []
    cursor: str | None = None
    while True:
        async with sessions() as session:
            page = await service.list_runs(
                session, status_filter=wanted, limit=limit, cursor=cursor
            )
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_every_run_of_a_page_has_its_own_counts_and_status(
    session_maker: Sessions,
) -> None:
    made = await _runs(session_maker)
    pages = await _pages(session_maker, None, limit=4)
    assert [len(p.items) for p in pages] == [4, 4, 1]
    listed = [run for page in pages for run in page.items]
    assert [run.id for run in listed] == sorted(made, reverse=True)
    for run in listed:
        assert run.status == made[run.id]
        shown = {
            (str(stage), str(state)): n
            for stage, states in run.progress.items()
            for state, n in states.items()
            if n
        }
        assert shown == await _counts(session_maker, run.id)
        assert run.prompts == 6
        # A listing leaves out the failures (a query per run); the run itself has them.
        assert run == (await _one(session_maker, run.id)).model_copy(update={"failures": None})


async def _one(sessions: Sessions, run_id: int) -> RunOut:
    async with sessions() as session:
        return await service.get_run(session, run_id)


@pytest.mark.parametrize("batch", [2, status.STATUS_SCAN_BATCH])
async def test_the_status_filter_pages_through_every_match_once(
    session_maker: Sessions, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """Small scan batches make the filter read several batches for one page, and pages end
    between batches; the default batch reads all runs at once."""
    monkeypatch.setattr(status, "STATUS_SCAN_BATCH", batch)
    made = await _runs(session_maker)
    for wanted in MIXES:
        expected = sorted((i for i, s in made.items() if s == wanted), reverse=True)
        for limit in (1, 2, 3):
            pages = await _pages(session_maker, wanted, limit)
            listed = [run.id for page in pages for run in page.items]
            assert listed == expected, (wanted, limit)
            assert all(run.status == wanted for page in pages for run in page.items)
            assert all(len(page.items) == limit for page in pages[:-1])


async def test_progress_of_some_runs_leaves_the_others_out(session_maker: Sessions) -> None:
    made = await _runs(session_maker)
    first, *_, last = sorted(made)
    async with session_maker() as session:
        progress = await status.run_progress(session, [first, last])
        assert await status.run_progress(session, []) == {}
        statuses = await status.run_statuses(session, run_ids=[first, last])
    assert set(progress) == {first, last}
    for run_id in (first, last):
        counted = {
            (str(stage), str(state)): n
            for stage, states in progress[run_id].items()
            for state, n in states.items()
            if n
        }
        assert counted == await _counts(session_maker, run_id)
    assert [(facts.id, value) for facts, value in statuses] == [
        (last, made[last]),
        (first, made[first]),
    ]


async def test_a_run_said_done_has_its_report_though_it_came_between_two_reads(
    session_maker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_dataset(session_maker)
    run_id = (await create(session_maker, spec())).id
    async with session_maker.begin() as session:
        await session.execute(update(Task).where(Task.run_id == run_id).values(state="done"))
    counts = repository.task_counts

    async def score_commits_meanwhile(*args: object, **kwargs: object) -> object:
        # The score task commits (its report with its success) after the run's row was read,
        # before its counts: a report flag read with the row, or before the counts, misses it.
        async with session_maker.begin() as other:
            other.add(RunReport(run_id=run_id, report={"run": {}}))
        return await counts(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repository, "task_counts", score_commits_meanwhile)
    async with session_maker() as session:
        facts = await status.one_run(session, run_id)
    assert facts is not None
    assert (facts.status, facts.has_report) == ("done", True)
