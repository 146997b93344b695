"""A run's status and progress, derived from its tasks by query; nothing of it is stored.

Status, first rule that holds:

1. ``queued``: tasks wait and none has started or ended (reused ones aside);
2. ``running``: a task is queued or running (a cancelled run stays ``running`` until its last
   running task finished or was abandoned at its heartbeat);
3. ``cancelled``: a task was cancelled;
4. ``done``: the score task succeeded (some generate or judge tasks may have failed: the
   progress counts say how many, and the report covers what succeeded);
5. ``failed``: otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import ColumnElement, Subquery, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.models import Annotator, Model, Prompt
from harmrank.gateway.db.run_models import (
    SUCCEEDED_STATES,
    Run,
    RunPrompt,
    RunReport,
    Stage,
    Task,
    TaskState,
)
from harmrank.gateway.runs.schemas import RunStatus, StageProgress

Progress = dict[Stage, StageProgress]


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _task_counts() -> Subquery:
    return (
        select(
            Task.run_id.label("run_id"),
            _count(Task.state == TaskState.QUEUED).label("queued"),
            _count(Task.state == TaskState.RUNNING).label("running"),
            _count(Task.state.in_((TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED))).label(
                "ended"
            ),
            _count(Task.state == TaskState.CANCELLED).label("cancelled"),
            _count(and_(Task.stage == Stage.SCORE, Task.state.in_(SUCCEEDED_STATES))).label(
                "scored"
            ),
        )
        .group_by(Task.run_id)
        .subquery("task_counts")
    )


def _status(counts: Subquery) -> ColumnElement[str]:
    c = counts.c
    return case(
        (and_(c.running == 0, c.queued > 0, c.ended == 0), "queued"),
        (c.running + c.queued > 0, "running"),
        (c.cancelled > 0, "cancelled"),
        (c.scored > 0, "done"),
        else_="failed",
    )


async def run_statuses(
    session: AsyncSession,
    *,
    run_ids: Sequence[int] | None = None,
    status: RunStatus | None = None,
    before_id: int | None = None,
    limit: int | None = None,
) -> list[tuple[Run, RunStatus]]:
    """Runs with their status, newest first, optionally only some ids or one status."""
    counts = _task_counts()
    derived = _status(counts).label("status")
    query = (
        select(Run, derived)
        .join(counts, counts.c.run_id == Run.id)
        .order_by(Run.id.desc())
        # Cancel and resume change runs by bulk UPDATE: reload, do not trust the identity map.
        .execution_options(populate_existing=True)
    )
    if run_ids is not None:
        query = query.where(Run.id.in_(run_ids))
    if status is not None:
        query = query.where(derived == status)
    if before_id is not None:
        query = query.where(Run.id < before_id)
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.execute(query)).all()
    return [(run, cast(RunStatus, value)) for run, value in rows]


async def run_progress(session: AsyncSession, run_ids: Sequence[int]) -> dict[int, Progress]:
    """Per run: task counts per stage and state, every stage and state present (zeros too)."""
    found = await session.execute(
        select(Task.run_id, Task.stage, Task.state, func.count())
        .where(Task.run_id.in_(run_ids))
        .group_by(Task.run_id, Task.stage, Task.state)
    )
    progress = {run_id: _zeros() for run_id in run_ids}
    for run_id, stage, state, n in found:
        progress[run_id][stage][state] = int(n)
    return progress


def status_of(progress: Progress) -> RunStatus:
    """The status rules above, applied to a run's progress counts (as ``_status`` in SQL)."""
    states = {state: sum(stage[state] for stage in progress.values()) for state in TaskState}
    ended = states[TaskState.DONE] + states[TaskState.FAILED] + states[TaskState.CANCELLED]
    scored = sum(progress[Stage.SCORE][state] for state in SUCCEEDED_STATES)
    active = states[TaskState.QUEUED] + states[TaskState.RUNNING]
    if states[TaskState.RUNNING] == 0 and states[TaskState.QUEUED] > 0 and ended == 0:
        return "queued"
    if active > 0:
        return "running"
    if states[TaskState.CANCELLED] > 0:
        return "cancelled"
    return "done" if scored > 0 else "failed"


async def run_facts(session: AsyncSession, run_ids: Sequence[int]) -> list[tuple[Run, int, bool]]:
    """Per run, newest first: the run, its prompt count and whether it has a report, in one
    query (a run's status page is polled, so its round trips count)."""
    prompts = (
        select(func.count()).where(RunPrompt.run_id == Run.id).correlate(Run).scalar_subquery()
    )
    reported = select(RunReport.run_id).where(RunReport.run_id == Run.id).exists()
    rows = await session.execute(
        select(Run, prompts, reported)
        .where(Run.id.in_(run_ids))
        .order_by(Run.id.desc())
        .execution_options(populate_existing=True)
    )
    return [(run, int(n), bool(has)) for run, n, has in rows]


def _zeros() -> Progress:
    return {stage: dict.fromkeys(TaskState, 0) for stage in Stage}


TaskRow = tuple[Task, str | None, str | None, str | None]
"""A task with its prompt's external id, its model's name and its judge's name."""


async def task_rows(
    session: AsyncSession,
    run_id: int,
    *,
    stage: Stage | None,
    state: TaskState | None,
    after_id: int | None,
    limit: int,
) -> list[TaskRow]:
    """The run's tasks in id order (the order they were planned), with the names they refer to."""
    query = (
        select(Task, Prompt.external_id, Model.name, Annotator.name)
        .outerjoin(Prompt, Prompt.id == Task.prompt_id)
        .outerjoin(Model, Model.id == Task.model_id)
        .outerjoin(Annotator, Annotator.id == Task.annotator_id)
        .where(Task.run_id == run_id)
        .order_by(Task.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if stage is not None:
        query = query.where(Task.stage == stage)
    if state is not None:
        query = query.where(Task.state == state)
    if after_id is not None:
        query = query.where(Task.id > after_id)
    return list((await session.execute(query)).all())
