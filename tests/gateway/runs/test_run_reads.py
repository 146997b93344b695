"""A run's stored report, or a page of its tasks, is read without the run's status, which counts
every task of the run (about 65 ms for a 300,000-task run); a run without a report yet, or no
run, is a 404 that says which."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from tests.gateway.runs.helpers import Sessions, create, seed_dataset, spec
from tests.gateway.runs.plans import sent_statements

from harmrank.common.errors import NotFound
from harmrank.gateway.db.run_models import RunReport
from harmrank.gateway.runs import service


async def test_a_stored_report_is_read_without_counting_the_runs_tasks(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker)
    run = await create(session_maker, spec())
    async with session_maker.begin() as session:
        session.add(RunReport(run_id=run.id, report={"annotators": {}}))

    async def read(session: AsyncSession) -> None:
        assert await service.get_report(session, run.id) == {"annotators": {}}

    sent = [statement for statement, _ in await sent_statements(session_maker, read)]
    assert sent  # the report was read
    assert not [statement for statement in sent if "tasks" in statement]


async def test_a_page_of_a_runs_tasks_does_not_count_them_all(session_maker: Sessions) -> None:
    await seed_dataset(session_maker)
    run = await create(session_maker, spec())

    async def page(session: AsyncSession) -> None:
        shown = await service.list_tasks(
            session, run.id, stage=None, state=None, limit=5, cursor=None
        )
        assert len(shown.items) == 5

    assert not [s for s, _ in await sent_statements(session_maker, page) if "count(" in s]
    async with session_maker() as session:
        with pytest.raises(NotFound, match=f"no run {run.id + 1}"):
            await service.list_tasks(
                session, run.id + 1, stage=None, state=None, limit=5, cursor=None
            )


async def test_a_report_not_stored_yet_and_a_missing_run_are_404s(session_maker: Sessions) -> None:
    await seed_dataset(session_maker)
    run = await create(session_maker, spec())
    async with session_maker() as session:
        with pytest.raises(NotFound, match=rf"run {run.id} has no report yet \(it is queued\)"):
            await service.get_report(session, run.id)
        with pytest.raises(NotFound, match=f"no run {run.id + 1}"):
            await service.get_report(session, run.id + 1)


async def test_a_cancel_or_resume_of_no_run_is_a_404_and_changes_nothing(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker)
    run = await create(session_maker, spec())
    async with session_maker() as session:
        for act in (service.cancel_run, service.resume_run):
            with pytest.raises(NotFound, match=f"no run {run.id + 1}"):
                await act(session, run.id + 1)
        assert (await service.get_run(session, run.id)).status == "queued"
