"""Cancelling and resuming a run: what happens to its tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, update
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.run_models import Run, Stage, Task, TaskState
from harmrank.gateway.runs.settle import rowcount, settle_tasks


async def cancel_run(session: AsyncSession, run_id: int, *, now: datetime) -> None:
    """Queued tasks are cancelled; running ones finish or are abandoned at their heartbeat."""
    await session.execute(
        update(Run)
        .where(Run.id == run_id, Run.cancelled_at.is_(None))
        .values(cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    where = and_(Task.run_id == run_id, Task.state == TaskState.QUEUED)
    await settle_tasks(session, where, TaskState.CANCELLED, now)


async def resume_run(session: AsyncSession, run_id: int) -> int:
    """Queue the run's cancelled and failed tasks again with their attempts reset, and its
    score task too, so the report covers what they add. Answers how many were queued."""
    await session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(cancelled_at=None)
        .execution_options(synchronize_session=False)
    )
    stopped = Task.state.in_((TaskState.CANCELLED, TaskState.FAILED))
    requeued = await _requeue(session, and_(Task.run_id == run_id, stopped))
    if requeued:
        score = and_(Task.run_id == run_id, Task.stage == Stage.SCORE)
        await _requeue(session, and_(score, Task.state != TaskState.RUNNING))
    return requeued


async def _requeue(session: AsyncSession, where: ColumnElement[bool]) -> int:
    statement = (
        update(Task)
        .where(where)
        .values(
            state=TaskState.QUEUED,
            attempts=0,
            not_before=None,
            lease_owner=None,
            lease_expires_at=None,
            error_type=None,
            error_message=None,
            started_at=None,
            finished_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(await session.execute(statement))
