"""The stage registry: every stage has its entry, and the worker works each through it."""

from __future__ import annotations

import inspect

import pytest
from tests.gateway.runs.helpers import (
    Fakes,
    Sessions,
    create,
    seed_dataset,
    spec,
    work_until_settled,
)

from harmrank.gateway.db.run_models import RunReport, Stage
from harmrank.gateway.runs import work, worker
from harmrank.gateway.runs.stages import STAGES, load_claimed
from harmrank.gateway.runs.tasks import ClaimedTask
from harmrank.metrics.report import ReportSettings


def test_every_stage_has_an_entry_and_the_worker_names_none() -> None:
    assert set(STAGES) == set(Stage)
    source = inspect.getsource(worker)
    assert "Stage." not in source
    assert "SCORE" not in source


def claimed(task_id: int, run_id: int, stage: Stage) -> ClaimedTask:
    return ClaimedTask(task_id, run_id, stage, None, None, None, None, None, None, 1, 3)


async def test_a_score_task_loads_on_its_own_and_a_new_report_replaces_the_old(
    session_maker: Sessions,
) -> None:
    async with session_maker() as session:
        assert await load_claimed(session, [claimed(7, 1, Stage.SCORE)], work.Runs()) == {}
    await seed_dataset(session_maker)
    run = await create(session_maker, spec())
    done = await work_until_settled(session_maker, Fakes().executors(), run.id)
    assert done.has_report
    async with session_maker() as session:
        first = await session.get(RunReport, run.id)
        assert first is not None
        created = first.created_at

    loaded = work.ScoreWork([], [], ReportSettings(p=0.9), {})
    made = STAGES[Stage.SCORE].made(claimed(9, run.id, Stage.SCORE), loaded, {"again": True})
    assert (made.details, made.replace) == ({"annotators": 0, "pairs": 0}, True)
    async with session_maker.begin() as session:
        await work.store_made(session, [made])
    async with session_maker() as session:
        second = await session.get(RunReport, run.id)
        assert second is not None
        # Stamped anew: the report page's cache and the explorer's fingerprint key on it.
        assert second.report == {"again": True}
        assert second.created_at > created


async def test_a_worker_reads_a_runs_models_once_and_forgets_the_oldest_runs(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker)
    first = await create(session_maker, spec())
    second = await create(session_maker, spec())
    runs = work.Runs(keep=1)
    specs = {first.id: spec()}
    async with session_maker() as session:
        models = await runs.models(session, specs)
    assert [m.name for m in models[first.id]] == [m.name for m in spec().models]

    class NoStatements:
        async def execute(self, *_args: object, **_kwargs: object) -> None:
            raise AssertionError("read again")

    # Known: no statement at all (a session that cannot run one answers it).
    assert await runs.models(NoStatements(), specs) == models  # type: ignore[arg-type]
    async with session_maker() as session:
        await runs.models(session, {second.id: spec()})
    with pytest.raises(AssertionError, match="read again"):  # forgotten: keep is 1
        await runs.models(NoStatements(), specs)  # type: ignore[arg-type]
