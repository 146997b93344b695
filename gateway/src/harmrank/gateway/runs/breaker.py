"""A circuit breaker per (judge, run): a judge whose first tasks all failed for good stops.

A judge that refuses every request (a wrong key, a model name the provider does not know, a
parameter the API no longer takes) would otherwise be paid for, or at least called, once per
task of the run. When the judge's first ``THRESHOLD`` tasks in a run failed for good and none
succeeded, its remaining queued tasks fail at once with ``judge_circuit_open`` and the first
failure's reason. ``POST /v1/runs/{id}/resume`` queues them again once the cause is fixed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.run_models import SUCCEEDED_STATES, Stage, Task, TaskState

THRESHOLD = 3
CIRCUIT_OPEN = "judge_circuit_open"
# Failures that say nothing about the judge itself.
_NOT_THE_JUDGES = ("dependency_failed", CIRCUIT_OPEN)


async def open_if_judge_never_worked(
    session: AsyncSession, run_id: int, annotator_id: int | None, *, now: datetime
) -> int:
    """Fail the judge's queued tasks in the run when its first tasks all failed for good;
    answers how many were stopped."""
    if annotator_id is None:
        return 0
    mine = and_(Task.run_id == run_id, Task.stage == Stage.JUDGE, Task.annotator_id == annotator_id)
    found = await session.execute(
        select(Task.state, func.count())
        .where(mine, ~Task.error_type.in_(_NOT_THE_JUDGES) | Task.error_type.is_(None))
        .group_by(Task.state)
    )
    counts: dict[TaskState, int] = {state: int(n) for state, n in found}
    if counts.get(TaskState.FAILED, 0) < THRESHOLD or any(counts.get(s) for s in SUCCEEDED_STATES):
        return 0
    first = await session.scalar(
        select(Task.error_message)
        .where(mine, Task.state == TaskState.FAILED)
        .order_by(Task.finished_at, Task.id)
        .limit(1)
    )
    message = f"stopped: the judge's first {THRESHOLD} tasks all failed for good ({first})"
    stopped = await session.execute(
        update(Task)
        .where(mine, Task.state == TaskState.QUEUED)
        .values(
            state=TaskState.FAILED,
            error_type=CIRCUIT_OPEN,
            error_message=message[:2000],
            finished_at=now,
            not_before=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(stopped.rowcount)  # type: ignore[attr-defined]
