"""Whole runs through ``run_worker`` with in-process fake executors, on both backends."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from tests.gateway.runs.helpers import (
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

from harmrank.common.errors import UpstreamUnavailable
from harmrank.gateway.db.models import Ranking, Response
from harmrank.gateway.db.run_models import Stage, Task, TaskState
from harmrank.gateway.runs import service, tasks
from harmrank.gateway.runs.tasks import TaskFailed
from harmrank.gateway.runs.worker import run_worker


async def count(sessions: Sessions, table: type[Response] | type[Ranking]) -> int:
    async with sessions() as session:
        return (await session.scalar(select(func.count()).select_from(table))) or 0


async def test_a_run_goes_through_every_stage_to_its_report(session_maker: Sessions) -> None:
    await seed_dataset(session_maker)
    run = await create(session_maker, spec())
    fakes = Fakes()

    done = await work_until_settled(session_maker, fakes.executors(), run.id)

    assert done.status == "done"
    assert done.has_report
    assert {stage: nonzero(done, stage) for stage in Stage} == {
        "generate": {"done": 12},
        "judge": {"done": 12},
        "score": {"done": 1},
    }
    assert (await count(session_maker, Response), await count(session_maker, Ranking)) == (12, 12)
    async with session_maker() as session:
        report = await service.get_report(session, run.id)
    assert report["models"] == ["small-a", "small-b"]
    assert list(report["annotators"]) == ["judge-x"]
    assert report["run"] == {
        "run_id": run.id,
        "prompts": 6,
        "judges": {"judge-x": 6},
        "missing_rankings": {},  # the judge ranked every prompt
        "humans": report["run"]["humans"],
        "judge_outcomes": {
            "judge-x": {
                "ranked": 12,
                "repaired": 0,
                "abstained": 0,
                "failed": 0,
                "abstained_because": {},
            }
        },
    }
    assert report["run"]["humans"]["included"] == []
    # Each judge call saw both responses, in canonical model order.
    assert {tuple(call.responses) for call in fakes.judge.calls} == {("small-a", "small-b")}


async def test_transient_errors_are_retried_until_done(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=2)
    run = await create(session_maker, spec())
    fakes = Fakes()
    fakes.generate.failures["small-a/p0"] = [
        UpstreamUnavailable("generator answered 503"),
        TaskFailed("upstream_timeout", "slow", transient=True),
    ]

    done = await work_until_settled(session_maker, fakes.executors(), run.id)

    assert done.status == "done"
    async with session_maker() as session:
        page = await service.list_tasks(
            session, run.id, stage=Stage.GENERATE, state=None, limit=10, cursor=None
        )
    retried = next(t for t in page.items if (t.model, t.prompt) == ("small-a", "p0"))
    assert (retried.state, retried.attempts, retried.error_type) == ("done", 3, None)
    assert len(fakes.generate.calls) == 4 + 2


async def test_a_permanent_error_fails_the_task_and_its_judges_once(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=2)
    run = await create(session_maker, spec())
    fakes = Fakes()
    fakes.generate.failures["small-b/p1"] = [
        TaskFailed("generation_validation", "input too long", transient=False)
    ]

    done = await work_until_settled(session_maker, fakes.executors(), run.id)

    # The other prompt was judged and scored: the run is done, with failures it names.
    assert done.status == "done_with_failures"
    assert nonzero(done, "generate") == {"done": 3, "failed": 1}
    assert nonzero(done, "judge") == {"done": 2, "failed": 2}
    failing = {(g.stage, g.model, g.judge): g for g in done.failures or []}
    generate = failing[(Stage.GENERATE, "small-b", None)]
    assert (generate.failed, generate.retrying) == (1, 0)
    assert generate.first_error.error_type == "generation_validation"
    assert generate.first_error.message == "input too long"
    judges = [g for key, g in failing.items() if key[0] == Stage.JUDGE]
    assert sum(g.failed for g in judges) == 2
    assert {g.first_error.error_type for g in judges} == {"dependency_failed"}
    assert len(fakes.generate.calls) == 4
    async with session_maker() as session:
        page = await service.list_tasks(
            session, run.id, stage=None, state=TaskState.FAILED, limit=10, cursor=None
        )
    errors = sorted((t.error_type, t.error_message) for t in page.items)
    assert errors[-1] == ("generation_validation", "input too long")
    assert {e for e, _ in errors[:-1]} == {tasks.DEPENDENCY_FAILED}

    async with session_maker.begin() as session:
        await service.resume_run(session, run.id)
    fakes = Fakes()
    done = await work_until_settled(session_maker, fakes.executors(), run.id)
    assert nonzero(done, "generate") == {"done": 4}
    assert len(fakes.generate.calls) == 1


async def test_an_unexpected_error_is_recorded_without_retry(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=1)
    run = await create(session_maker, spec())
    fakes = Fakes()
    fakes.generate.failures["small-a/p0"] = [RuntimeError("a bug")]
    done = await work_until_settled(session_maker, fakes.executors(), run.id)
    assert done.status == "failed"  # no judge ranked anything: nothing to score
    async with session_maker() as session:
        types = set(await session.scalars(select(Task.error_type).where(Task.state == "failed")))
    assert types == {"internal", tasks.DEPENDENCY_FAILED, "nothing_to_score"}


async def test_cancelling_abandons_running_tasks_at_their_heartbeat(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=2)
    run = await create(session_maker, spec())
    fakes = Fakes()
    fakes.generate.gate = asyncio.Event()  # generation never finishes
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(
            session_maker,
            fakes.executors(),
            worker_id="w",
            concurrency=4,
            claim_batch=2,
            poll_interval=0.02,
            lease_seconds=0.3,
            stop_event=stop,
        )
    )

    async def all_running() -> bool:  # four slots, filled two at a time
        return len(fakes.generate.calls) == 4

    async def cancelled() -> bool:
        return (await get(session_maker, run.id)).status == "cancelled"

    await eventually(all_running)
    async with session_maker.begin() as session:
        await service.cancel_run(session, run.id)
    await eventually(cancelled)
    stop.set()
    await asyncio.wait_for(worker, 5)

    assert nonzero(await get(session_maker, run.id), "generate") == {"cancelled": 4}
    assert await count(session_maker, Response) == 0
