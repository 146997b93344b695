"""When a queued task is ready to claim, as SQL conditions on the claim's candidate row
(``queue._claim_statement``): a generate task at once, a judge task once its prompt's responses
exist, a score task once its run has no generate or judge task left to do.

Each check runs for every candidate the claim walks past, so each must be an index probe that
reads what is pending, never the tasks table, whatever the statistics say: they are those of
the last run's planning (every task queued) long after its tasks finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Exists,
    FromClause,
    Table,
    and_,
    bindparam,
    literal,
    literal_column,
    or_,
    select,
)

from harmrank.gateway.db.run_models import ACTIVE_STATES, SUCCEEDED_STATES, WORK, Stage, Task

_tasks = cast(Table, Task.__table__)


def _probed(*conditions: ColumnElement[bool]) -> Exists:
    """EXISTS of a task matching the conditions, looked up for each candidate, never hashed.

    PostgreSQL may plan a correlated EXISTS as a hash of every matching row, built once per
    statement; it chooses so from the statistics, and those of a run's planning (every task
    queued) made it hash the run's pending generate tasks out of a scan of the whole table on
    every claim: 0.33 ms of a claim's 0.83 ms (EXPLAIN ANALYZE, a 4,000-task run 85% done). The
    OFFSET stops that: the planner only turns an EXISTS whose subquery it may simplify into a
    hash (simplify_EXISTS_query refuses one with an OFFSET), so each candidate the claim walks
    probes the index instead: a few rows of ix_tasks_pending_generate. SQLite ignores it."""
    return select(literal_column("1")).where(*conditions).offset(literal_column("0")).exists()


def constant(value: StrEnum) -> ColumnElement[str]:
    """A stage or state written into the claim's SQL, not bound.

    PostgreSQL uses a partial index only where it can prove the query implies its condition,
    which a parameter never does. And a prepared statement is planned for its parameters each
    time until a plan for any parameters (generic) looks no costlier: with the claim's stages
    and limit as parameters it looked costlier (it could not tell a candidate's stage, nor how
    many candidates it needs), so every claim was planned anew: 0.85 ms of the database's CPU
    a claim of 8 against 0.52 ms with one plan kept (its backend's CPU over 500 claims of a
    4,000-task run 85% done)."""
    column = _tasks.c.stage if isinstance(value, Stage) else _tasks.c.state
    return literal(value, column.type, literal_execute=True)


def constants(name: str, values: Sequence[StrEnum]) -> BindParameter[Any]:
    """A list of stages or states written into the SQL, not bound (see ``constant``): the
    claim's, and the metrics refresher's (``task_repository``), whose plan for any values could
    not tell how few rows they match either, and scanned the table."""
    column = _tasks.c.stage if isinstance(values[0], Stage) else _tasks.c.state
    return bindparam(name, list(values), type_=column.type, expanding=True, literal_execute=True)


def _work_to_do(task: FromClause) -> ColumnElement[bool]:
    """Some generate or judge task of the task's run is still queued or running (its score
    waits).

    Asked as "the first entry of ix_tasks_work_to_do in run order, from this run to this run":
    one probe of the index, which reads only what is left of the run. Asked as an EXISTS of the
    run's tasks still to do, PostgreSQL chose how from its statistics, and those of a run's
    planning (every task queued) made a scan look as cheap as any index (a match expected
    within the first rows), even this one: the scan read the table up to the first task still
    to do, all of it once the run's work was done (a claim of 16: 260 ms at 308,000 tasks,
    bench/claim_readiness.py). In run order no scan gives a first row before it has read and
    sorted every match, and this partial index is the smallest in that order. A range, not
    ``=``: under an equality the planner drops the ORDER BY (a constant column), and the
    statistics choose again."""
    other = _tasks.alias("other")
    first = (
        select(other.c.run_id)
        # ix_tasks_work_to_do's condition (WORK_TO_DO), written as constants.
        .where(
            other.c.stage.in_(constants("work", WORK)),
            other.c.state.in_(constants("to_do", ACTIVE_STATES)),
            other.c.run_id.between(task.c.run_id, task.c.run_id),
        )
        .order_by(other.c.run_id)
        .limit(literal_column("1"))
    )
    return first.scalar_subquery().is_not(None)


def ready(task: FromClause) -> ColumnElement[bool]:
    """Judge: every response of its prompt exists (its generate tasks succeeded). Score: no
    generate or judge task of the run is still to do."""
    other = _tasks.alias("other")
    # ix_tasks_pending_generate's condition (PENDING_GENERATE), written as constants.
    responses_pending = _probed(
        other.c.run_id == task.c.run_id,
        other.c.stage == constant(Stage.GENERATE),
        other.c.prompt_id == task.c.prompt_id,
        other.c.state.not_in(constants("succeeded", SUCCEEDED_STATES)),
    )
    return or_(
        task.c.stage == constant(Stage.GENERATE),
        and_(task.c.stage == constant(Stage.JUDGE), ~responses_pending),
        and_(task.c.stage == constant(Stage.SCORE), ~_work_to_do(task)),
    )
