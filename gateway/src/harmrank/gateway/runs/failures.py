"""Why a run is not going well: per stage and per model or judge, tasks failed and retrying,
with their first and last error, and whether the run is stalled. Derived from the tasks by
query (``task_repository``), like the rest of a run's status.

"When" an error happened is the task's ``finished_at`` for a task that failed for good and its
``started_at`` (the start of the attempt that failed) for one waiting to retry: the tasks table
keeps no other time of the failure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.annotation import repository as annotation_repo
from harmrank.gateway.db.run_models import Stage, Task, TaskState
from harmrank.gateway.results import repository as results
from harmrank.gateway.runs import task_repository

_UPSTREAM = re.compile(r"([\w.-]+) answered [0-9]{3}\b")


class ErrorFact(BaseModel):
    error_type: str
    message: str
    upstream: str | None = Field(description="The service or provider that answered it.")
    at: datetime | None = Field(description="When: the failed attempt's start or end.")


class FailureGroup(BaseModel):
    """The failing tasks of one stage and one model (generate) or judge (judge)."""

    stage: Stage
    model: str | None
    judge: str | None
    failed: int = Field(description="Tasks failed for good.")
    retrying: int = Field(description="Tasks that failed and wait to be tried again.")
    first_error: ErrorFact
    last_error: ErrorFact


def upstream_of(message: str) -> str | None:
    """The innermost upstream a message names: in "judge answered 502: anthropic answered
    400: …" it is the provider that refused, not the service that passed the refusal on."""
    found = _UPSTREAM.findall(message)
    return str(found[-1]) if found else None


async def failure_groups(session: AsyncSession, run_id: int) -> list[FailureGroup]:
    """Three small queries whatever the run's size: groups, their first/last tasks, names."""
    rows = await task_repository.failing_groups(session, run_id)
    if not rows:
        return []
    ends = {task_id for row in rows for task_id in row[5:7]}
    tasks = {t.id: t for t in await task_repository.tasks_by_id(session, ends)}
    names = await _names(session, rows)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for stage, model_id, judge_id, state, count, first, last in rows:
        group = merged.setdefault(
            (stage, model_id, judge_id), {"failed": 0, "retrying": 0, "ids": []}
        )
        group["failed" if state == TaskState.FAILED else "retrying"] += int(count)
        group["ids"] += [first, last]
    return [
        FailureGroup(
            stage=stage,
            model=names["model"].get(model_id),
            judge=names["judge"].get(judge_id),
            failed=group["failed"],
            retrying=group["retrying"],
            first_error=_fact(tasks[min(group["ids"])]),
            last_error=_fact(max((tasks[i] for i in group["ids"]), key=_when)),
        )
        for (stage, model_id, judge_id), group in merged.items()
    ]


async def _names(session: AsyncSession, rows: Sequence[Any]) -> dict[str, dict[Any, str]]:
    model_ids = {row[1] for row in rows if row[1] is not None}
    judge_ids = [row[2] for row in rows if row[2] is not None]
    return {
        "model": dict(await results.model_names(session, model_ids)),
        "judge": dict(await annotation_repo.annotator_names(session, judge_ids)),
    }


def _when(task: Task) -> datetime:
    return task.finished_at or task.started_at or task.created_at


def _fact(task: Task) -> ErrorFact:
    message = task.error_message or ""
    return ErrorFact(
        error_type=task.error_type or "unknown",
        message=message,
        upstream=upstream_of(message),
        at=task.finished_at or task.started_at,
    )


def stalled_reason(
    progress: dict[Stage, dict[TaskState, int]], groups: Sequence[FailureGroup]
) -> str | None:
    """Why the run makes no progress, or None: no task is running and every queued task of the
    first stage with queued tasks failed before and waits to try again."""
    if any(counts[TaskState.RUNNING] for counts in progress.values()):
        return None
    for stage in Stage:
        queued = progress[stage][TaskState.QUEUED]
        if not queued:
            continue
        mine = [g for g in groups if g.stage == stage and g.retrying]
        if sum(g.retrying for g in mine) < queued:
            return None
        last = max((g.last_error for g in mine), key=lambda e: e.at.timestamp() if e.at else 0)
        return (
            f"every queued {stage.value} task ({queued}) failed and waits to retry; "
            f"last error {last.error_type}: {last.message}"
        )
    return None
