"""The queue's SQL driven by hand, with an explicit clock: claims, leases, retries, readiness."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, select, update
from tests.gateway.runs.helpers import Sessions, at, create, get, nonzero, seed_dataset, spec

from harmrank.gateway.db.models import Model, Prompt, Response
from harmrank.gateway.db.run_models import Run, Stage, Task, TaskState
from harmrank.gateway.results import repository as results
from harmrank.gateway.runs import control, queue, settle, tasks, work
from harmrank.gateway.runs.schemas import RunStatus
from harmrank.gateway.runs.tasks import Backoff, ClaimedTask, Failure, Lease

LEASE = 30.0
NO_JITTER = Backoff(base_seconds=10, max_seconds=25, jitter=False)


async def claim(
    sessions: Sessions, worker: str = "w1", seconds: float = 0, limit: int = 1
) -> list[ClaimedTask]:
    async with sessions.begin() as session:
        await settle.reap_expired(session, now=at(seconds))
        return await queue.claim(session, worker, now=at(seconds), lease_seconds=LEASE, limit=limit)


async def complete(sessions: Sessions, task: ClaimedTask, worker: str = "w1") -> bool:
    async with sessions.begin() as session:
        held = await queue.complete(session, worker, [tasks.Completion(task.id)], now=at(1))
    return held == {task.id}


async def renew(
    sessions: Sessions, task: ClaimedTask, worker: str = "w1", seconds: float = 1
) -> Lease:
    async with sessions.begin() as session:
        leases = await queue.renew(session, [task.id], worker, now=at(seconds), lease_seconds=LEASE)
    return leases[task.id]


async def fail(
    sessions: Sessions, task: ClaimedTask, failure: Failure, seconds: float = 1
) -> TaskState | None:
    async with sessions.begin() as session:
        return await settle.fail(session, task, "w1", failure, now=at(seconds), backoff=NO_JITTER)


async def task_row(sessions: Sessions, task_id: int) -> Task:
    async with sessions() as session:
        row = await session.get(Task, task_id)
        assert row is not None
        return row


async def two_models_one_prompt(sessions: Sessions) -> int:
    await seed_dataset(sessions, prompts=1)
    run = await create(sessions, spec(judges=[{"name": "judge-x", "orders": 1}]))
    return run.id


TRANSIENT = Failure("upstream_unavailable", "generator answered 503", transient=True)
PERMANENT = Failure("generation_validation", "input too long", transient=False)


async def test_claims_lease_tasks_in_planning_order(session_maker: Sessions) -> None:
    run_id = await two_models_one_prompt(session_maker)
    first, second = await claim(session_maker, limit=5)

    # Only the generate tasks are ready; the judge task waits for both responses.
    assert (first.stage, second.stage) == (Stage.GENERATE, Stage.GENERATE)
    assert first.id < second.id
    assert first.attempts == 1
    row = await task_row(session_maker, first.id)
    assert (row.state, row.lease_owner, row.lease_expires_at) == ("running", "w1", at(LEASE))
    assert (await get(session_maker, run_id)).status == "running"
    assert await claim(session_maker) == []


async def test_judge_waits_for_its_responses_and_score_for_judging(
    session_maker: Sessions,
) -> None:
    await two_models_one_prompt(session_maker)
    first, second = await claim(session_maker, limit=2)
    assert await complete(session_maker, first)
    assert await claim(session_maker) == []  # one response is still missing
    assert await complete(session_maker, second)

    (judge,) = await claim(session_maker, limit=5)
    assert judge.stage == Stage.JUDGE
    assert await claim(session_maker) == []  # the score waits for the judge task
    assert await complete(session_maker, judge)
    (score,) = await claim(session_maker)
    assert score.stage == Stage.SCORE


async def test_each_runs_score_waits_for_its_own_work_to_do_only(
    session_maker: Sessions,
) -> None:
    """Three runs in flight: a claim's walk passes each run's score task (its run's highest
    id) before the later runs' tasks, and must take it exactly when no generate or judge task
    of its run is queued (a retry waiting included) or running; the work of the runs before
    or after it, or a task failed for good, does not hold it back."""
    await seed_dataset(session_maker, prompts=1)
    one_order = spec(judges=[{"name": "judge-x", "orders": 1}])
    runs = [(await create(session_maker, one_order)).id for _ in range(3)]
    generations = await claim(session_maker, limit=10)
    assert [t.run_id for t in generations] == [run for run in runs for _ in range(2)]
    for task in generations[2:4]:  # the middle run's; the last run's stay running throughout
        assert await complete(session_maker, task)

    (judge,) = await claim(session_maker, limit=10)
    assert (judge.run_id, judge.stage) == (runs[1], Stage.JUDGE)
    assert await claim(session_maker, limit=10) == []  # each score waits for its run's work
    assert await complete(session_maker, judge)
    (score,) = await claim(session_maker, limit=10)
    assert (score.run_id, score.stage) == (runs[1], Stage.SCORE)

    for task in generations[:2]:
        assert await complete(session_maker, task)
    (judge,) = await claim(session_maker, seconds=2, limit=10)
    assert await fail(session_maker, judge, TRANSIENT, seconds=2) == TaskState.QUEUED
    assert await claim(session_maker, seconds=3, limit=10) == []  # the retry is work to do
    (again,) = await claim(session_maker, seconds=12, limit=10)
    assert again.id == judge.id
    assert await fail(session_maker, again, PERMANENT, seconds=13) == TaskState.FAILED
    (score,) = await claim(session_maker, seconds=14, limit=10)
    assert (score.run_id, score.stage) == (runs[0], Stage.SCORE)


async def test_a_claim_reads_what_each_task_needs_with_it(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=2)
    await create(session_maker, spec())
    claimed = await claim(session_maker, limit=4)
    async with session_maker() as session:
        prompts = {p.id: p for p in await session.scalars(select(Prompt))}
        models = {m.id: m.name for m in await session.scalars(select(Model))}
    assert len({t.prompt_id for t in claimed}) == 2  # two prompts, two models
    for task in claimed:
        assert task.inputs is not None
        assert task.prompt_id is not None
        assert task.model_id is not None
        prompt = prompts[task.prompt_id]
        assert (task.inputs.prompt_external_id, task.inputs.prompt_text) == (
            prompt.external_id,
            prompt.text,
        )
        assert task.inputs.model_name == models[task.model_id]
        assert task.inputs.stored is False

    # Another run stored the first task's response meanwhile: claimed again, it says so, and
    # only it (one response of the same prompt, another model's, must not count).
    first = claimed[0]
    async with session_maker.begin() as session:
        row = {"prompt_id": first.prompt_id, "model_id": first.model_id, "text": "made"}
        await results.insert_if_absent(
            session, Response, [row | {"generation_key": first.generation_key, "source": "t"}]
        )
    again = await claim(session_maker, seconds=LEASE + 1, limit=4)
    assert {t.id: t.inputs.stored for t in again if t.inputs} == {
        t.id: t.id == first.id for t in claimed
    }


async def test_a_worker_reads_a_runs_spec_once(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=2)
    run = await create(session_maker, spec())
    claimed = await claim(session_maker, limit=4)
    runs = work.Runs()
    async with session_maker() as session:
        assert await runs.specs(session, claimed) == {run.id: spec()}
    # Known now: read from the worker's memory, not again from the database.
    async with session_maker.begin() as session:
        await session.execute(update(Run).where(Run.id == run.id).values(spec={}))
    async with session_maker() as session:
        assert await runs.specs(session, claimed[:1]) == {run.id: spec()}


async def test_an_expired_lease_is_claimed_again(session_maker: Sessions) -> None:
    await two_models_one_prompt(session_maker)
    (task,) = await claim(session_maker, "dead")
    await claim(session_maker, "other")  # takes the other generate task

    assert await claim(session_maker, "w2", seconds=LEASE - 1) == []
    (again,) = await claim(session_maker, "w2", seconds=LEASE + 1)
    assert (again.id, again.attempts) == (task.id, 2)
    # The dead worker's late answer is refused: the task is no longer its.
    assert not await complete(session_maker, task, "dead")
    assert await renew(session_maker, task, "dead", seconds=LEASE + 2) is Lease.LOST
    assert await complete(session_maker, again, "w2")


async def test_a_lease_expired_on_the_last_attempt_fails_the_task(
    session_maker: Sessions,
) -> None:
    await two_models_one_prompt(session_maker)
    async with session_maker.begin() as session:
        await session.execute(update(Task).values(max_attempts=1))
    (task,) = await claim(session_maker, "dead")
    await claim(session_maker, "w2", seconds=LEASE + 1)

    row = await task_row(session_maker, task.id)
    assert (row.state, row.error_type) == ("failed", tasks.LEASE_EXPIRED)


async def test_renewing_extends_the_lease(session_maker: Sessions) -> None:
    await two_models_one_prompt(session_maker)
    (task,) = await claim(session_maker)
    assert await renew(session_maker, task, seconds=20) is Lease.RENEWED
    assert (await task_row(session_maker, task.id)).lease_expires_at == at(20 + LEASE)
    assert [t.id for t in await claim(session_maker, "w2", seconds=LEASE + 1)] != [task.id]


async def test_one_heartbeat_renews_a_batch_and_tells_each_lease_apart(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=2)
    run = await create(session_maker, spec())
    kept, lost, other = await claim(session_maker, limit=3)
    # ``lost`` expired and another worker holds it now.
    async with session_maker.begin() as session:
        await session.execute(update(Task).where(Task.id == lost.id).values(lease_owner="w2"))

    async with session_maker.begin() as session:
        ids = [kept.id, lost.id, other.id]
        leases = await queue.renew(session, ids, "w1", now=at(20), lease_seconds=LEASE)
    assert leases == {kept.id: Lease.RENEWED, lost.id: Lease.LOST, other.id: Lease.RENEWED}
    assert (await task_row(session_maker, kept.id)).lease_expires_at == at(20 + LEASE)
    assert (await task_row(session_maker, lost.id)).lease_expires_at == at(LEASE)

    async with session_maker.begin() as session:
        await control.cancel_run(session, run.id, now=at(21))
        leases = await queue.renew(session, ids, "w1", now=at(22), lease_seconds=LEASE)
    assert leases == {kept.id: Lease.CANCELLED, lost.id: Lease.LOST, other.id: Lease.CANCELLED}


async def test_completing_a_batch_settles_only_the_tasks_still_held(
    session_maker: Sessions, backend: str
) -> None:
    await seed_dataset(session_maker, prompts=2)
    await create(session_maker, spec())
    done, reused, lost, other = await claim(session_maker, limit=4)
    async with session_maker.begin() as session:
        await session.execute(update(Task).where(Task.id == lost.id).values(lease_owner="w2"))

    kept = {"tokens": 3, "finish_reason": 'the "end"', "text": "l'été", "none": None, "n": [1.5]}
    finished = [
        tasks.Completion(done.id, kept),
        tasks.Completion(reused.id, reused=True),
        tasks.Completion(lost.id, {"tokens": 4}),
        tasks.Completion(other.id, {"tokens": 5}),
    ]
    sent: list[str] = []

    def catch(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    async with session_maker.begin() as session:
        connection = (await session.connection()).sync_connection
        event.listen(connection, "before_cursor_execute", catch)
        held = await queue.complete(session, "w1", finished, now=at(2))
        event.remove(connection, "before_cursor_execute", catch)

    assert held == {done.id, reused.id, other.id}
    rows = [await task_row(session_maker, t.id) for t in (done, reused, lost, other)]
    assert [(r.state, r.result, r.lease_owner) for r in rows] == [
        ("done", kept, None),
        ("reused", None, None),
        ("running", None, "w2"),
        ("done", {"tokens": 5}, None),
    ]
    assert rows[0].finished_at == at(2)
    # PostgreSQL takes the results with the ids, in the one statement; SQLite keeps them after
    # it, in one executemany.
    assert len(sent) == (1 if backend == "postgresql" else 2), sent


async def test_a_transient_failure_is_retried_after_a_backoff(session_maker: Sessions) -> None:
    await two_models_one_prompt(session_maker)
    (task,) = await claim(session_maker)
    await claim(session_maker, "other")

    assert await fail(session_maker, task, TRANSIENT) == TaskState.QUEUED
    row = await task_row(session_maker, task.id)
    assert (row.state, row.not_before, row.error_type) == (
        "queued",
        at(1 + 10),
        TRANSIENT.error_type,
    )
    assert await claim(session_maker, seconds=10) == []
    (again,) = await claim(session_maker, seconds=11)
    assert again.attempts == 2

    # The backoff doubles, up to its cap.
    assert await fail(session_maker, again, TRANSIENT, seconds=12) == TaskState.QUEUED
    assert (await task_row(session_maker, task.id)).not_before == at(12 + 20)
    assert NO_JITTER.delay(3) == 25
    third = (await claim(session_maker, seconds=32))[0]
    assert await complete(session_maker, third)
    row = await task_row(session_maker, task.id)
    assert (row.state, row.attempts, row.error_type) == ("done", 3, None)


async def test_transient_failures_give_up_after_max_attempts(session_maker: Sessions) -> None:
    run_id = await two_models_one_prompt(session_maker)
    seconds = 0.0
    for _ in range(3):  # max_attempts of the spec
        task = (await claim(session_maker, seconds=seconds))[0]
        outcome = await fail(session_maker, task, TRANSIENT, seconds=seconds)
        seconds += 100
    assert outcome == TaskState.FAILED
    row = await task_row(session_maker, task.id)
    assert row.error_message is not None
    assert "gave up after 3 attempts" in row.error_message
    # Its prompt's judge task can never run: it fails with it.
    assert nonzero(await get(session_maker, run_id), "judge") == {"failed": 1}


async def test_a_permanent_failure_is_recorded_and_not_retried(session_maker: Sessions) -> None:
    run_id = await two_models_one_prompt(session_maker)
    (task,) = await claim(session_maker)
    assert await fail(session_maker, task, PERMANENT) == TaskState.FAILED

    row = await task_row(session_maker, task.id)
    assert (row.state, row.attempts) == ("failed", 1)
    assert (row.error_type, row.error_message) == ("generation_validation", "input too long")
    remaining = await claim(session_maker, seconds=1000, limit=5)
    assert [t.id for t in remaining] != [task.id]
    assert task.id not in [t.id for t in remaining]
    run = await get(session_maker, run_id)
    assert nonzero(run, "generate") == {"failed": 1, "running": 1}
    assert nonzero(run, "judge") == {"failed": 1}


async def test_cancel_and_resume(session_maker: Sessions) -> None:
    run_id = await two_models_one_prompt(session_maker)
    (running,) = await claim(session_maker)
    async with session_maker.begin() as session:
        await control.cancel_run(session, run_id, now=at(1))

    run = await get(session_maker, run_id)
    assert run.status == "running"  # one task is still running
    assert nonzero(run, "generate") == {"running": 1, "cancelled": 1}
    assert await claim(session_maker, "w2", seconds=2) == []
    # Its heartbeat abandons it.
    assert await renew(session_maker, running, seconds=3) is Lease.CANCELLED
    run = await get(session_maker, run_id)
    assert run.status == "cancelled"
    assert run.cancelled_at is not None
    assert sum(run.progress[Stage.JUDGE].values()) == run.progress[Stage.JUDGE][TaskState.CANCELLED]

    async with session_maker.begin() as session:
        assert await control.resume_run(session, run_id) == 4
    run = await get(session_maker, run_id)
    assert (run.status, run.cancelled_at) == ("queued", None)
    assert nonzero(run, "generate") == {"queued": 2}
    assert all(t.attempts == 1 for t in await claim(session_maker, seconds=4, limit=2))


async def test_a_dead_workers_task_in_a_cancelled_run_is_cancelled(
    session_maker: Sessions,
) -> None:
    run_id = await two_models_one_prompt(session_maker)
    await claim(session_maker, "dead", limit=2)
    async with session_maker.begin() as session:
        await control.cancel_run(session, run_id, now=at(1))
    assert await claim(session_maker, "w2", seconds=LEASE + 1) == []
    assert (await get(session_maker, run_id)).status == "cancelled"


async def test_status_derives_from_the_tasks(session_maker: Sessions) -> None:
    run_id = await two_models_one_prompt(session_maker)
    assert (await get(session_maker, run_id)).status == "queued"
    for _ in range(4):  # two generate, one judge, the score
        (task,) = await claim(session_maker)
        assert await complete(session_maker, task)
    run = await get(session_maker, run_id)
    assert run.status == "done"
    assert {stage: nonzero(run, stage) for stage in Stage} == {
        "generate": {"done": 2},
        "judge": {"done": 1},
        "score": {"done": 1},
    }
    async with session_maker.begin() as session:
        await session.execute(update(Task).where(Task.stage == Stage.SCORE).values(state="failed"))
    assert (await get(session_maker, run_id)).status == "failed"


async def test_concurrent_claimers_never_share_a_task(session_maker: Sessions) -> None:
    """On PostgreSQL, two connections claiming at once skip each other's locked rows."""
    await seed_dataset(session_maker, prompts=20)
    await create(session_maker, spec())  # 40 generate tasks ready
    start = asyncio.Event()

    async def claimer(worker: str) -> list[int]:
        ids: list[int] = []
        await start.wait()
        while batch := await claim(session_maker, worker, limit=3):
            ids += [t.id for t in batch]
        return ids

    tasks = [asyncio.create_task(claimer(f"w{i}")) for i in range(4)]
    start.set()
    claimed = await asyncio.gather(*tasks)

    every = [task_id for ids in claimed for task_id in ids]
    assert len(every) == len(set(every)) == 40
    async with session_maker() as session:
        owners = list(
            await session.scalars(select(Task.lease_owner).where(Task.state == "running"))
        )
    assert len(owners) == 40


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_claim_skips_rows_another_open_claim_locked(session_maker: Sessions) -> None:
    """Both claim transactions stay open at once: the second passes over the first's rows
    instead of waiting for them (SQLite, with one writer, would wait)."""
    await seed_dataset(session_maker, prompts=3)
    await create(session_maker, spec())  # 6 generate tasks ready
    async with session_maker.begin() as one, session_maker.begin() as two:
        first = await queue.claim(one, "w1", now=at(0), lease_seconds=LEASE, limit=4)
        # Bounded: a claim that waited for the first's locks instead of skipping them must fail
        # this test, not hang it.
        second = await asyncio.wait_for(
            queue.claim(two, "w2", now=at(0), lease_seconds=LEASE, limit=4), timeout=10
        )
    assert len(first) == 4
    assert len(second) == 2
    assert not {t.id for t in first} & {t.id for t in second}


STATE_MIXES = [
    ({"generate": "queued", "judge": "queued", "score": "queued"}, "queued"),
    ({"generate": "running", "judge": "queued", "score": "queued"}, "running"),
    ({"generate": "done", "judge": "queued", "score": "queued"}, "running"),
    ({"generate": "reused", "judge": "reused", "score": "queued"}, "queued"),
    ({"generate": "done", "judge": "cancelled", "score": "cancelled"}, "cancelled"),
    ({"generate": "failed", "judge": "failed", "score": "done"}, "done_with_failures"),
    ({"generate": "done", "judge": "failed", "score": "done"}, "done_with_failures"),
    ({"generate": "done", "judge": "reused", "score": "done"}, "done"),
    ({"generate": "done", "judge": "done", "score": "failed"}, "failed"),
    ({"generate": "cancelled", "judge": "running", "score": "queued"}, "running"),
]


@pytest.mark.parametrize(("mix", "expected"), STATE_MIXES)
async def test_the_status_rules_on_a_run_page_and_in_the_status_filter(
    session_maker: Sessions, mix: dict[str, str], expected: RunStatus
) -> None:
    """The rules of runs/status.py, worked by hand for each mix of task states."""
    from harmrank.gateway.runs import status

    run_id = await two_models_one_prompt(session_maker)
    async with session_maker.begin() as session:
        for stage, state in mix.items():
            await session.execute(
                update(Task).where(Task.run_id == run_id, Task.stage == stage).values(state=state)
            )
    assert (await get(session_maker, run_id)).status == expected
    async with session_maker() as session:
        filtered = await status.run_page(session, status=expected, limit=5)
    assert [facts.id for facts in filtered] == [run_id]
