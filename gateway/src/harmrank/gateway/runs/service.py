"""Runs: create (idempotently), read, list, cancel, resume. Flushes only and the edge commits,
but for a creation, which commits its run's head and its rest in turn (``create_run``).

Idempotency: a key names one request. The first request with a key makes the run and stores
the key with the request's digest; a later one with the same key and the same body answers
that run, with another body it is a 409. Two requests racing with one key both plan, and the
unique key lets only one commit: the loser rolls back its whole transaction (not a savepoint,
which pysqlite cannot nest in a transaction it has not begun) and answers the winner's run.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.common.errors import Conflict, NotFound
from harmrank.gateway.db.base import utc_now
from harmrank.gateway.db.run_models import Stage, Task, TaskState
from harmrank.gateway.pagination import fetch_page
from harmrank.gateway.runs import control, failures, missing, repository, status
from harmrank.gateway.runs.checks import Services, plan_checked
from harmrank.gateway.runs.planner import plan_rest, plan_run, planning_stalled, stable_hash
from harmrank.gateway.runs.schemas import (
    RunCreate,
    RunOut,
    RunPage,
    RunStatus,
    TaskOut,
    TaskPage,
)

# The tags of this module's cursors (see harmrank.gateway.pagination): r"u"ns and "t"asks.
RUNS = "u"
TASKS = "t"


async def create_run(
    sessions: async_sessionmaker[AsyncSession],
    spec: RunCreate,
    idempotency_key: str | None = None,
    services: Services | None = None,
) -> tuple[RunOut, bool]:
    """The run for the request, and whether this call created it (checked as it is planned,
    see :mod:`checks`; a replayed request answers its run unchecked).

    Two transactions where the planner splits the run (``planner.plan_run``): its head with the
    idempotency key, committed, so that workers start on it; then its rest. A replay of a run
    whose rest is being written answers it as it stands."""
    async with sessions() as session:  # not begin(): a lost race rolls back and reads on
        run_id, created = await _plan_head(session, spec, idempotency_key, services)
        await session.commit()
    async with sessions.begin() as session:
        if created:
            await plan_rest(session, run_id)
        return await get_run(session, run_id), created


async def _plan_head(
    session: AsyncSession,
    spec: RunCreate,
    idempotency_key: str | None,
    services: Services | None,
) -> tuple[int, bool]:
    # Defaults left out: a body that spells a default out is the same request as one that
    # omits it, and a field added later with a default does not change older requests' digests.
    digest = stable_hash(spec.model_dump(mode="json", exclude_defaults=True))
    if idempotency_key is not None:
        replayed = await _replay(session, idempotency_key, digest)
        if replayed is not None:
            return replayed, False
    run = await plan_checked(session, spec, services, partial(plan_run, session, spec))
    if idempotency_key is None:
        return run.id, True
    try:
        await repository.add_idempotency_key(session, idempotency_key, digest, run.id)
    except IntegrityError:
        await session.rollback()
        replayed = await _replay(session, idempotency_key, digest)
        if replayed is None:
            raise
        return replayed, False
    return run.id, True


async def _replay(session: AsyncSession, key: str, digest: str) -> int | None:
    """The id of the run the key made, if it made one."""
    found = await repository.idempotency_key(session, key)
    if found is None:
        return None
    if found.request_sha256 != digest:
        raise Conflict(f"Idempotency-Key {key!r} was used with another request body")
    return found.run_id


async def get_run(session: AsyncSession, run_id: int) -> RunOut:
    """The run with its progress and, when tasks fail, why."""
    found = await status.one_run(session, run_id)
    if found is None:
        raise NotFound(f"no run {run_id}")
    groups = await failures.failure_groups(session, run_id)
    active = found.status in ("queued", "running")
    stalled = failures.stalled_reason(found.progress, groups) if active else None
    if found.planned_at is None:
        stalled = planning_stalled(found.created_at, utc_now()) or stalled
    lacking = await missing.of_run(session, run_id) if found.has_report else None
    update = {"failures": groups, "stalled": stalled, "missing_rankings": lacking}
    return run_out(found).model_copy(update=update)


async def list_runs(
    session: AsyncSession, *, status_filter: RunStatus | None, limit: int, cursor: str | None
) -> RunPage:
    """Newest first; ``cursor`` is the ``next_cursor`` of the page before."""
    shown, next_cursor = await fetch_page(
        RUNS,
        cursor,
        limit,
        lambda before, n: status.run_page(session, status=status_filter, before_id=before, limit=n),
    )
    return RunPage(items=[run_out(facts) for facts in shown], next_cursor=next_cursor)


async def cancel_run(session: AsyncSession, run_id: int) -> RunOut:
    await _known(session, run_id)
    await control.cancel_run(session, run_id, now=utc_now())
    return await get_run(session, run_id)


async def resume_run(session: AsyncSession, run_id: int) -> RunOut:
    await _known(session, run_id)
    # A run left half planned is written whole first; one being written, waited for (its
    # rest's lock), so that the resume sees every task.
    await plan_rest(session, run_id)
    await control.resume_run(session, run_id)
    return await get_run(session, run_id)


async def _known(session: AsyncSession, run_id: int) -> None:
    """A 404 unless the run exists: its row, not its status, which counts every task of the
    run (66 ms at 300,001 tasks) and which a page of its tasks, a cancel or a resume read only
    to answer that 404."""
    if not await repository.run_exists(session, run_id):
        raise NotFound(f"no run {run_id}")


async def get_report(session: AsyncSession, run_id: int) -> dict[str, Any]:
    report = await repository.load_report(session, run_id)
    if report is not None:
        # Read alone: the run's status counts every task (see _known).
        return report
    run = await get_run(session, run_id)  # no such run: its 404
    raise NotFound(f"run {run_id} has no report yet (it is {run.status})")


async def list_tasks(
    session: AsyncSession,
    run_id: int,
    *,
    stage: Stage | None,
    state: TaskState | None,
    limit: int,
    cursor: str | None,
) -> TaskPage:
    """In planning order; ``cursor`` is the ``next_cursor`` of the page before."""
    await _known(session, run_id)
    shown, next_cursor = await fetch_page(
        TASKS,
        cursor,
        limit,
        lambda after, n: repository.task_rows(
            session, run_id, stage=stage, state=state, after_id=after, limit=n
        ),
        lambda row: row[0].id,
    )
    return TaskPage(items=[_task_out(*row) for row in shown], next_cursor=next_cursor)


def run_out(facts: status.RunFacts) -> RunOut:
    # Read by field name, the stored spec validated into its model on the way.
    return RunOut.model_validate(facts, from_attributes=True)


def _task_out(task: Task, prompt: str | None, model: str | None, judge: str | None) -> TaskOut:
    return TaskOut(
        id=task.id,
        stage=task.stage,
        state=task.state,
        prompt=prompt,
        model=model,
        generation_key=task.generation_key,
        judge=judge,
        order_index=task.order_index,
        presentation_key=task.presentation_key,
        attempts=task.attempts,
        max_attempts=task.max_attempts,
        not_before=task.not_before,
        lease_owner=task.lease_owner,
        lease_expires_at=task.lease_expires_at,
        error_type=task.error_type,
        error_message=task.error_message,
        result=task.result,
        created_at=task.created_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
    )
