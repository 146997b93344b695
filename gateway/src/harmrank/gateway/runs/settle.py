"""The end of a task that does not complete: a failure retried after a backoff or recorded for
good, the expired leases no claim may take again, and the judge tasks a failed response
blocks. The tasks' other changes of state are ``queue`` (claim, renew, complete) and
``control`` (cancel and resume).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from harmrank.gateway.db.engine import rowcount
from harmrank.gateway.db.run_models import Run, Stage, Task, TaskState
from harmrank.gateway.runs import breaker
from harmrank.gateway.runs.tasks import (
    DEPENDENCY_FAILED,
    LEASE_EXPIRED,
    MAX_MESSAGE_CHARS,
    Backoff,
    ClaimedTask,
    Failure,
)


def cancelled_runs() -> Any:
    """The ids of the cancelled runs (a subquery): their tasks are settled, never claimed."""
    return select(Run.id).where(Run.cancelled_at.is_not(None))


async def reap_expired(session: AsyncSession, *, now: datetime) -> None:
    """Settle the expired leases that must not be claimed again: of cancelled runs, or of
    tasks with no attempt left. Run it before claiming, in its own transaction."""
    expired = and_(Task.state == TaskState.RUNNING, Task.lease_expires_at < now)
    await settle_tasks(
        session, and_(expired, Task.run_id.in_(cancelled_runs())), TaskState.CANCELLED, now
    )
    spent = await settle_tasks(
        session,
        and_(expired, Task.attempts >= Task.max_attempts),
        TaskState.FAILED,
        now,
        error_type=LEASE_EXPIRED,
        error_message="the worker's lease expired on the last attempt (did the worker die?)",
    )
    if spent:
        await fail_blocked_judges(session, now=now)


async def settle_tasks(
    session: AsyncSession,
    where: ColumnElement[bool],
    state: TaskState,
    now: datetime,
    **values: Any,
) -> int:
    statement = (
        update(Task)
        .where(where)
        .values(state=state, lease_owner=None, lease_expires_at=None, finished_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(await session.execute(statement))


def _held_by(task_id: int, worker: str) -> ColumnElement[bool]:
    return and_(Task.id == task_id, Task.lease_owner == worker, Task.state == TaskState.RUNNING)


async def fail(
    session: AsyncSession,
    task: ClaimedTask,
    worker: str,
    failure: Failure,
    *,
    now: datetime,
    backoff: Backoff,
) -> TaskState | None:
    """Record a failure: back to the queue after a backoff when transient and attempts are
    left, failed for good otherwise. None when the worker no longer holds the task."""
    message = failure.message[:MAX_MESSAGE_CHARS]
    errors = {"error_type": failure.error_type, "error_message": message}
    # A retry of a cancelled run would sit in the queue forever: no claim takes it.
    cancelled = and_(_held_by(task.id, worker), Task.run_id.in_(cancelled_runs()))
    if await settle_tasks(session, cancelled, TaskState.CANCELLED, now, **errors):
        return TaskState.CANCELLED
    if failure.transient and task.attempts < task.max_attempts:
        retry_at = now + timedelta(seconds=backoff.delay(task.attempts))
        statement = (
            update(Task)
            .where(_held_by(task.id, worker))
            .values(
                state=TaskState.QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                not_before=retry_at,
                **errors,
            )
            .execution_options(synchronize_session=False)
        )
        return TaskState.QUEUED if rowcount(await session.execute(statement)) else None
    if failure.transient:
        errors["error_message"] = f"{message} (gave up after {task.attempts} attempts)"
    if not await settle_tasks(session, _held_by(task.id, worker), TaskState.FAILED, now, **errors):
        return None
    if task.stage == Stage.GENERATE:
        await fail_blocked_judges(session, now=now, run_id=task.run_id)
    elif task.stage == Stage.JUDGE:
        await breaker.open_if_judge_never_worked(session, task.run_id, task.annotator_id, now=now)
    return TaskState.FAILED


async def fail_blocked_judges(
    session: AsyncSession, *, now: datetime, run_id: int | None = None
) -> None:
    """Fail the queued judge tasks whose prompt lost a response for good: they could never
    become ready, and the run could never finish. A resume queues them again."""
    other = aliased(Task, name="other")
    failed_generate = exists().where(
        other.run_id == Task.run_id,
        other.stage == Stage.GENERATE,
        other.prompt_id == Task.prompt_id,
        other.state == TaskState.FAILED,
    )
    where = and_(Task.stage == Stage.JUDGE, Task.state == TaskState.QUEUED, failed_generate)
    if run_id is not None:
        where = and_(where, Task.run_id == run_id)
    await settle_tasks(
        session,
        where,
        TaskState.FAILED,
        now,
        error_type=DEPENDENCY_FAILED,
        error_message="a response of this prompt could not be generated",
    )
