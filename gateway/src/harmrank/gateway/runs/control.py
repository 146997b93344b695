"""Cancelling and resuming a run: what happens to its tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.run_models import Stage, TaskState
from harmrank.gateway.runs import task_repository
from harmrank.gateway.runs.announce import announce
from harmrank.gateway.runs.settle import settle_tasks

# The tasks a resume queues again: those that will not run by themselves.
_STOPPED = (TaskState.CANCELLED, TaskState.FAILED)


async def cancel_run(session: AsyncSession, run_id: int, *, now: datetime) -> None:
    """Queued tasks are cancelled; running ones finish or are abandoned at their heartbeat."""
    await task_repository.mark_cancelled(session, run_id, now=now)
    await settle_tasks(session, task_repository.queued_of_run(run_id), TaskState.CANCELLED, now)


async def resume_run(session: AsyncSession, run_id: int) -> int:
    """Queue the run's cancelled and failed tasks again with their attempts reset, and its
    score task too, so the report covers what they add. Answers how many were queued."""
    await task_repository.mark_resumed(session, run_id)
    requeued = await task_repository.requeue_in_states(session, run_id, _STOPPED)
    if requeued:
        await task_repository.requeue_stage(session, run_id, Stage.SCORE, unless=TaskState.RUNNING)
        await announce(session)
    return requeued
