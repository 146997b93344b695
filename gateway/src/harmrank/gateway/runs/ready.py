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

from harmrank.gateway.db.run_models import SUCCEEDED_STATES, Stage, Task, TaskState

_tasks = cast(Table, Task.__table__)


def _probed(*conditions: ColumnElement[bool]) -> Exists:
    """EXISTS of a task matching the conditions, looked up for each candidate, never hashed.

    PostgreSQL may plan a correlated EXISTS as a hash of every matching row, built once per
    statement; it chooses so from the statistics, and those of a run's planning (every task
    queued) made it hash the run's pending generate tasks out of a scan of the whole table on
    every claim: 0.33 ms of a claim's 0.83 ms (EXPLAIN ANALYZE, a 4,000-task run 85% done). The
    OFFSET stops that: the planner only turns an EXISTS whose subquery it may simplify into a
    hash (simplify_EXISTS_query refuses one with an OFFSET), so each candidate the claim walks
    probes the index instead: a few rows of ix_tasks_pending_generate or
    ix_tasks_run_id_stage_state. SQLite ignores it."""
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
    """A list of stages or states written into the claim's SQL, not bound (see ``constant``)."""
    column = _tasks.c.stage if isinstance(values[0], Stage) else _tasks.c.state
    return bindparam(name, list(values), type_=column.type, expanding=True, literal_execute=True)


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
    work_pending = _probed(
        other.c.run_id == task.c.run_id,
        other.c.stage.in_((Stage.GENERATE, Stage.JUDGE)),
        other.c.state.in_((TaskState.QUEUED, TaskState.RUNNING)),
    )
    return or_(
        task.c.stage == constant(Stage.GENERATE),
        and_(task.c.stage == constant(Stage.JUDGE), ~responses_pending),
        and_(task.c.stage == constant(Stage.SCORE), ~work_pending),
    )
