"""The runs domain's queries on the states of tasks outside the claim-to-settle path: cancelling
and resuming a run, the judge circuit breaker's counts and stop, a run's failure summary and the
queue's metrics over every run. ``control`` and ``breaker`` hold the decisions; the claim, the
lease and a task's own end are ``queue`` and ``settle``, the queue's store. A run's rows and
what planning, the stages, a run's status and its task listing read are ``repository``'s.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Row, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.engine import rowcount
from harmrank.gateway.db.models import Annotator, Model
from harmrank.gateway.db.run_models import ACTIVE_STATES, Run, Stage, Task, TaskState
from harmrank.gateway.runs.ready import constants

# --- cancelling and resuming a run ------------------------------------------------------------


async def mark_cancelled(session: AsyncSession, run_id: int, *, now: datetime) -> None:
    """Mark the run cancelled now, unless it already was (the first cancel's time stays)."""
    await session.execute(
        update(Run)
        .where(Run.id == run_id, Run.cancelled_at.is_(None))
        .values(cancelled_at=now)
        .execution_options(synchronize_session=False)
    )


async def mark_resumed(session: AsyncSession, run_id: int) -> None:
    """Clear the run's cancellation and count the resume, in the transaction that queues its
    tasks again (``Run.resumes`` tells the metrics refresher to count the run anew)."""
    await session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(cancelled_at=None, resumes=Run.resumes + 1)
        .execution_options(synchronize_session=False)
    )


def queued_of_run(run_id: int) -> ColumnElement[bool]:
    """The run's queued tasks, as the condition ``settle.settle_tasks`` ends tasks by."""
    return and_(Task.run_id == run_id, Task.state == TaskState.QUEUED)


async def requeue_in_states(
    session: AsyncSession, run_id: int, states: Collection[TaskState]
) -> int:
    """Queue the run's tasks in ``states`` again as never tried; answers how many."""
    return await _requeue(session, and_(Task.run_id == run_id, Task.state.in_(states)))


async def requeue_stage(
    session: AsyncSession, run_id: int, stage: Stage, *, unless: TaskState
) -> int:
    """Queue the run's tasks of ``stage`` again as never tried, but those in state ``unless``;
    answers how many."""
    of_stage = and_(Task.run_id == run_id, Task.stage == stage)
    return await _requeue(session, and_(of_stage, Task.state != unless))


async def _requeue(session: AsyncSession, where: ColumnElement[bool]) -> int:
    # The only statement that takes tasks out of a finished state: its callers count the resume
    # (mark_resumed) in the same transaction, or the metrics would keep the run's old counts.
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


# --- one judge's tasks in a run (the circuit breaker) -----------------------------------------


def _judge_tasks(run_id: int, annotator_id: int) -> ColumnElement[bool]:
    return and_(Task.run_id == run_id, Task.stage == Stage.JUDGE, Task.annotator_id == annotator_id)


async def judge_state_counts(
    session: AsyncSession, run_id: int, annotator_id: int, *, ignoring: Collection[str]
) -> dict[TaskState, int]:
    """The judge's tasks in the run by state, leaving out those that failed with an error type
    in ``ignoring``."""
    found = await session.execute(
        select(Task.state, func.count())
        .where(
            _judge_tasks(run_id, annotator_id),
            ~Task.error_type.in_(ignoring) | Task.error_type.is_(None),
        )
        .group_by(Task.state)
    )
    return {state: int(n) for state, n in found}


async def first_judge_failure(session: AsyncSession, run_id: int, annotator_id: int) -> str | None:
    """The error message of the judge's task in the run that failed for good first."""
    found: str | None = await session.scalar(
        select(Task.error_message)
        .where(_judge_tasks(run_id, annotator_id), Task.state == TaskState.FAILED)
        .order_by(Task.finished_at, Task.id)
        .limit(1)
    )
    return found


async def fail_queued_judge_tasks(
    session: AsyncSession,
    run_id: int,
    annotator_id: int,
    *,
    error_type: str,
    error_message: str,
    now: datetime,
) -> int:
    """Fail the judge's queued tasks in the run for good; answers how many."""
    stopped = await session.execute(
        update(Task)
        .where(_judge_tasks(run_id, annotator_id), Task.state == TaskState.QUEUED)
        .values(
            state=TaskState.FAILED,
            error_type=error_type,
            error_message=error_message,
            finished_at=now,
            not_before=None,
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(stopped)


# --- a run's failures -------------------------------------------------------------------------

# The failing tasks of a run (failed for good, or queued to retry) grouped by stage, model or
# judge, and state: how many, and the first and last task id of each group.
_FAILING = (
    select(
        Task.stage,
        Task.model_id,
        Task.annotator_id,
        Task.state,
        func.count(),
        func.min(Task.id),
        func.max(Task.id),
    )
    .where(Task.error_type.is_not(None), Task.state.in_((TaskState.FAILED, TaskState.QUEUED)))
    .group_by(Task.stage, Task.model_id, Task.annotator_id, Task.state)
)


FailingGroup = Row[Stage, int | None, int | None, TaskState, int, int, int]


async def failing_groups(session: AsyncSession, run_id: int) -> Sequence[FailingGroup]:
    """(stage, model id, judge id, state, tasks, first task id, last task id) per group."""
    return (await session.execute(_FAILING.where(Task.run_id == run_id))).all()


async def tasks_by_id(session: AsyncSession, ids: set[int]) -> Sequence[Task]:
    return (await session.scalars(select(Task).where(Task.id.in_(ids)))).all()


# --- the task queue's metrics (harmrank.gateway.task_tally) ----------------------------------


async def run_resumes(session: AsyncSession) -> dict[int, int | None]:
    """Every run's id and how many times it was resumed; None while its tasks are still being
    written (``planner.plan_run``), when its counts may grow by more than a resume."""
    found = await session.execute(select(Run.id, Run.resumes, Run.planned_at))
    return {run_id: None if planned is None else n for run_id, n, planned in found.all()}


async def active_task_groups(
    session: AsyncSession,
) -> Sequence[Row[int, Stage, TaskState, int, datetime]]:
    """(run id, stage, state, tasks, when the oldest was planned) of the queued and running
    tasks: read through the indexes that lead with the state, so it costs what is active."""
    found = await session.execute(
        select(Task.run_id, Task.stage, Task.state, func.count(), func.min(Task.created_at))
        .where(Task.state.in_(constants("active", ACTIVE_STATES)))
        .group_by(Task.run_id, Task.stage, Task.state)
    )
    return found.all()


def _of_runs(run_ids: Collection[int], states: Collection[TaskState]) -> ColumnElement[bool]:
    """The tasks of the runs in ``states``, every stage named: ``ix_tasks_run_id_stage_state``
    is then searched for each (run, stage, state) and only the matching entries are read,
    where a condition on the run and the state alone reads every entry of the run."""
    return and_(
        Task.run_id.in_(run_ids),
        Task.stage.in_(constants("stages", list(Stage))),
        Task.state.in_(constants("states", list(states))),
    )


async def run_task_groups(
    session: AsyncSession,
    run_ids: Collection[int] | None,
    states: Collection[TaskState] = tuple(TaskState),
) -> Sequence[Row[int, Stage, TaskState, int]]:
    """(run id, stage, state, tasks) of the tasks in ``states`` of the runs ``run_ids`` (every
    task of every run: None)."""
    query = select(Task.run_id, Task.stage, Task.state, func.count())
    if run_ids is not None:
        query = query.where(_of_runs(run_ids, states))
    found = await session.execute(query.group_by(Task.run_id, Task.stage, Task.state))
    return found.all()


async def run_failed_groups(
    session: AsyncSession, run_ids: Collection[int] | None
) -> Sequence[Row[int, Stage, str | None, str | None, str | None, int]]:
    """(run id, stage, model, judge, error type, tasks) of the tasks failed for good in the runs
    ``run_ids`` (every run: None)."""
    query = (
        select(Task.run_id, Task.stage, Model.name, Annotator.name, Task.error_type, func.count())
        .outerjoin(Model, Model.id == Task.model_id)
        .outerjoin(Annotator, Annotator.id == Task.annotator_id)
        .where(
            Task.state == TaskState.FAILED
            if run_ids is None
            else _of_runs(run_ids, [TaskState.FAILED])
        )
    )
    columns = (Task.run_id, Task.stage, Model.name, Annotator.name, Task.error_type)
    return (await session.execute(query.group_by(*columns))).all()
