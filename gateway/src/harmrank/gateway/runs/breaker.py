"""A circuit breaker per (judge, run): a judge whose first tasks all failed for good stops.

A judge that refuses every request (a wrong key, a model name the provider does not know, a
parameter the API no longer takes) would otherwise be paid for, or at least called, once per
task of the run. When the judge's first ``THRESHOLD`` tasks in a run failed for good and none
succeeded, its remaining queued tasks fail at once with ``judge_circuit_open`` and the first
failure's reason. ``POST /v1/runs/{id}/resume`` queues them again once the cause is fixed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.run_models import SUCCEEDED_STATES, Stage, TaskState
from harmrank.gateway.runs import task_repository
from harmrank.gateway.runs.tasks import ClaimedTask

THRESHOLD = 3
CIRCUIT_OPEN = "judge_circuit_open"
# Failures that say nothing about the judge itself.
_NOT_THE_JUDGES = ("dependency_failed", CIRCUIT_OPEN)


def same_circuit(failed: ClaimedTask, other: ClaimedTask) -> bool:
    """Whether the breaker that ``failed``'s failure may open would stop ``other``: both are
    tasks of one judge in one run."""
    return failed.stage == other.stage == Stage.JUDGE and (failed.run_id, failed.annotator_id) == (
        other.run_id,
        other.annotator_id,
    )


async def open_if_judge_never_worked(
    session: AsyncSession, run_id: int, annotator_id: int | None, *, now: datetime
) -> int:
    """Fail the judge's queued tasks in the run when its first tasks all failed for good;
    answers how many were stopped."""
    if annotator_id is None:
        return 0
    counts = await task_repository.judge_state_counts(
        session, run_id, annotator_id, ignoring=_NOT_THE_JUDGES
    )
    if counts.get(TaskState.FAILED, 0) < THRESHOLD or any(counts.get(s) for s in SUCCEEDED_STATES):
        return 0
    first = await task_repository.first_judge_failure(session, run_id, annotator_id)
    message = f"stopped: the judge's first {THRESHOLD} tasks all failed for good ({first})"
    return await task_repository.fail_queued_judge_tasks(
        session,
        run_id,
        annotator_id,
        error_type=CIRCUIT_OPEN,
        error_message=message[:2000],
        now=now,
    )
