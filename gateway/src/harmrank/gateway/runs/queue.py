"""The task queue's hot path: claim, renew and complete leases, a batch of tasks per statement
(a failure, retried or for good, and the expired leases are ``settle``; cancelling and resuming
a run is ``control``; what a task is to its worker, ``tasks``; when a queued task is ready,
``ready``).

Claiming is ``UPDATE tasks … WHERE id IN (SELECT … LIMIT n) RETURNING …`` (on PostgreSQL
``id = ANY(ARRAY(SELECT …))``, see ``_claim_statement``), once for queued
tasks that are ready and, if that found too few, once for tasks whose lease expired (a worker
claims a batch of tasks at a time, so every statement of the hot path takes many task ids):

- PostgreSQL: the inner SELECT takes ``FOR UPDATE SKIP LOCKED``, so concurrent claimers pass
  over each other's rows instead of waiting, and a row another claimer changed meanwhile is
  re-checked against the WHERE before it is locked: no task is claimed twice.
- SQLite has no row locks and ignores ``FOR UPDATE``; it has one writer at a time, and the
  UPDATE (with its subquery) is one statement under that write lock, so it is atomic too.
  The claim transaction must start with this write (the driver begins a transaction at the
  first DML statement), never with a read it then upgrades, which SQLite could refuse as busy.

A lease is ``lease_owner`` plus ``lease_expires_at``; the worker renews it while it works. A
task whose lease expired (its worker died) is claimable again and counts another attempt; one
that has used all its attempts is failed with ``lease_expired`` instead (``settle``).

The statements a worker runs for every batch (claim, renew, complete) are Core statements on the
tasks table, built once (per dialect, for their lists of ids) with bound parameters: building
them per call through the ORM (aliases adapted column by column) cost more CPU than the database
spent running them.

A claim also answers what each task's call needs (its prompt, model or judge name, whether its
result is stored already), in subqueries of its RETURNING: no reads after it but, once per run, a
worker's read of the run's spec (``work.Runs``).

Times are the worker's clock (UTC), passed in: leases are seconds long, so hosts must keep their
clocks in sync (NTP) to well under a lease.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    FromClause,
    Integer,
    Table,
    Text,
    Update,
    and_,
    any_,
    bindparam,
    case,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.models import Annotator, Model, Prompt, Ranking, Response
from harmrank.gateway.db.run_models import Stage, Task, TaskState
from harmrank.gateway.runs.ready import constant, ready
from harmrank.gateway.runs.settle import cancelled_runs
from harmrank.gateway.runs.tasks import ClaimedTask, ClaimInputs, Completion, Lease

_tasks = cast(Table, Task.__table__)


def _now() -> BindParameter[datetime]:
    return bindparam("now", type_=_tasks.c.finished_at.type)


# The columns a claim returns are the fields of a claimed task, and what its call needs.
_CLAIMED_COLUMNS = [_tasks.c[f.name] for f in dataclasses.fields(ClaimedTask) if f.name != "inputs"]


def _claimed_row(column: str) -> ColumnElement[Any]:
    """A column of the claimed row, named with its table inside a RETURNING's subquery.
    SQLAlchemy writes RETURNING's columns without their table for SQLite, so there
    ``responses.prompt_id = tasks.prompt_id`` would come out as ``prompt_id = prompt_id``: the
    subquery's own column, always equal to itself. An unqualified column inside the subquery
    is its own table's, as meant."""
    return literal_column(f"{_tasks.name}.{column}", _tasks.c[column].type)


def _input_columns() -> list[ColumnElement[Any]]:
    """What a task's call needs, read in its claim's RETURNING (correlated subqueries on the
    claimed row: one statement instead of a read per table after it, in both dialects)."""
    prompts, models, annotators = (cast(Table, m.__table__) for m in (Prompt, Model, Annotator))
    responses, rankings = cast(Table, Response.__table__), cast(Table, Ranking.__table__)
    response_stored = exists().where(
        responses.c.prompt_id == _claimed_row("prompt_id"),
        responses.c.model_id == _claimed_row("model_id"),
        responses.c.generation_key == _claimed_row("generation_key"),
    )
    ranking_stored = exists().where(
        rankings.c.annotator_id == _claimed_row("annotator_id"),
        rankings.c.prompt_id == _claimed_row("prompt_id"),
        rankings.c.presentation_key == _claimed_row("presentation_key"),
    )
    prompt = prompts.c.id == _claimed_row("prompt_id")
    columns = {
        "prompt_external_id": select(prompts.c.external_id).where(prompt),
        "prompt_text": select(prompts.c.text).where(prompt),
        "model_name": select(models.c.name).where(models.c.id == _claimed_row("model_id")),
        "judge_name": select(annotators.c.name).where(
            annotators.c.id == _claimed_row("annotator_id")
        ),
    }
    stored = case(
        (_tasks.c.stage == Stage.GENERATE, response_stored),
        (_tasks.c.stage == Stage.JUDGE, ranking_stored),
        else_=False,
    )
    return [q.scalar_subquery().label(name) for name, q in columns.items()] + [
        stored.label("stored")
    ]


_INPUT_NAMES = [f.name for f in dataclasses.fields(ClaimInputs)]


def _queued_and_ready(task: FromClause) -> ColumnElement[bool]:
    # ix_tasks_queued_id's condition (QUEUED), in a constant (see ready.constant).
    due = or_(task.c.not_before.is_(None), task.c.not_before <= _now())
    return and_(task.c.state == constant(TaskState.QUEUED), due, ready(task))


def _lease_expired(task: FromClause) -> ColumnElement[bool]:
    return and_(task.c.state == TaskState.RUNNING, task.c.lease_expires_at < _now())


@functools.cache
def _claim_statement(
    condition: Callable[[FromClause], ColumnElement[bool]], dialect: str
) -> Update:
    """Lease the first ``limit`` tasks meeting the condition to ``worker`` (bound parameters:
    now, worker, lease_expires_at, limit)."""
    candidate = _tasks.alias("candidate")
    chosen = (
        select(candidate.c.id)
        .where(condition(candidate), candidate.c.run_id.not_in(cancelled_runs()))
        .order_by(candidate.c.id)
        # Written into the SQL too (see ready.constant): a statement per limit, at most a claim
        # batch's worth of them.
        .limit(bindparam("limit", type_=Integer, literal_execute=True))
        .with_for_update(skip_locked=True, of=candidate)
    )
    if dialect == "postgresql":
        # The chosen ids as one array, read by the primary key: as ``IN (subquery)``, a plan
        # that expects more of them than a few (a plan for any limit expected a tenth of the
        # candidates) joins them with a scan of the whole tasks table.
        chosen_ids = _tasks.c.id == any_(func.array(chosen.scalar_subquery(), type_=ARRAY(Integer)))
    else:
        chosen_ids = _tasks.c.id.in_(chosen.scalar_subquery())
    return (
        update(_tasks)
        .where(chosen_ids)
        .values(
            state=TaskState.RUNNING,
            lease_owner=bindparam("worker"),
            lease_expires_at=bindparam("lease_expires_at"),
            attempts=_tasks.c.attempts + 1,
            not_before=None,
            started_at=_now(),
        )
        .returning(*_CLAIMED_COLUMNS, *_input_columns())
    )


# Planning inserts tasks in bulk faster than autovacuum re-reads the table; with the old
# statistics (say "tasks is empty") PostgreSQL plans the claim's readiness checks as nested
# scans, and one claim over a 30,000-task run took 43 s instead of 30 ms (bench/scale_run.py).
ANALYZE_AFTER_PLANNING = 500


async def refresh_statistics(session: AsyncSession, *, planned: int) -> None:
    """Re-read the tasks table's statistics after a large plan (PostgreSQL; a no-op elsewhere).

    ANALYZE inside the planning transaction counts that transaction's own new rows, so the
    statistics are right from the moment the run is committed."""
    if planned >= ANALYZE_AFTER_PLANNING and session.get_bind().dialect.name == "postgresql":
        await session.execute(text("ANALYZE tasks"))


async def claim(
    session: AsyncSession, worker: str, *, now: datetime, lease_seconds: float, limit: int = 1
) -> list[ClaimedTask]:
    """Lease up to ``limit`` ready tasks to ``worker``, then tasks whose lease expired; the
    caller commits at once.

    Two statements, not one with an OR: each condition starts with a state, so each walks that
    state's tasks in id order (``ix_tasks_queued_id``, ``ix_tasks_state_id``) and stops at the
    first claimable rows, instead of every claim re-reading the finished head of the table
    (which made a claim cost O(run size)).
    """
    params = {
        "now": now,
        "worker": worker,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "limit": limit,
    }
    dialect = _dialect(session)
    claimed = await _claim_with(session, _claim_statement(_queued_and_ready, dialect), params)
    if len(claimed) < limit:
        more = params | {"limit": limit - len(claimed)}
        claimed += await _claim_with(session, _claim_statement(_lease_expired, dialect), more)
    return sorted(claimed, key=lambda t: t.id)


async def _claim_with(
    session: AsyncSession, statement: Update, params: dict[str, Any]
) -> list[ClaimedTask]:
    claimed = []
    for row in (await session.execute(statement, params)).mappings():
        task = {c.name: row[c.name] for c in _CLAIMED_COLUMNS}
        # SQLite answers the EXISTS as 0 or 1.
        inputs = {name: row[name] for name in _INPUT_NAMES} | {"stored": bool(row["stored"])}
        claimed.append(ClaimedTask(**task, inputs=ClaimInputs(**inputs)))
    return claimed


def _among(ids: str, dialect: str) -> ColumnElement[bool]:
    """The tasks whose id is in the bound list ``ids``. PostgreSQL takes the list as one array
    parameter (``= ANY``): an expanding ``IN`` is rendered anew for every execution and is a
    statement of its own, prepared again, for every length of list. SQLite has no arrays."""
    if dialect == "postgresql":
        return _tasks.c.id == any_(bindparam(ids, type_=ARRAY(Integer)))
    return _tasks.c.id.in_(bindparam(ids, expanding=True))


def _holder() -> ColumnElement[bool]:
    """The tasks that ``worker`` (bound) holds."""
    return and_(_tasks.c.lease_owner == bindparam("worker"), _tasks.c.state == TaskState.RUNNING)


def _held(dialect: str) -> ColumnElement[bool]:
    """The tasks of ``task_ids`` (a bound list) that ``worker`` (bound) still holds."""
    return and_(_among("task_ids", dialect), _holder())


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


@functools.cache
def _abandon_cancelled(dialect: str) -> Update:
    return (
        update(_tasks)
        .where(_held(dialect), _tasks.c.run_id.in_(cancelled_runs()))
        .values(
            state=TaskState.CANCELLED,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=_now(),
        )
        .returning(_tasks.c.id)
    )


@functools.cache
def _extend(dialect: str) -> Update:
    return (
        update(_tasks)
        .where(_held(dialect))
        .values(lease_expires_at=bindparam("lease_expires_at"))
        .returning(_tasks.c.id)
    )


async def renew(
    session: AsyncSession,
    task_ids: Sequence[int],
    worker: str,
    *,
    now: datetime,
    lease_seconds: float,
) -> dict[int, Lease]:
    """Extend the leases (the heartbeat), two statements for any number of tasks; abandon the
    tasks of cancelled runs instead. Answers what became of each task's lease."""
    params = {"task_ids": list(task_ids), "worker": worker, "now": now}
    dialect = _dialect(session)
    cancelled = (await session.execute(_abandon_cancelled(dialect), params)).scalars().all()
    expires = now + timedelta(seconds=lease_seconds)
    extend = params | {"lease_expires_at": expires}
    renewed = (await session.execute(_extend(dialect), extend)).scalars()
    leases = dict.fromkeys(task_ids, Lease.LOST)
    return (
        leases | dict.fromkeys(renewed, Lease.RENEWED) | dict.fromkeys(cancelled, Lease.CANCELLED)
    )


@functools.cache
def _release(dialect: str) -> Update:
    return (
        update(_tasks)
        .where(_held(dialect))
        .values(
            state=TaskState.QUEUED,
            lease_owner=None,
            lease_expires_at=None,
            attempts=_tasks.c.attempts - 1,
            started_at=None,
        )
    )


async def release(session: AsyncSession, task_ids: Sequence[int], worker: str) -> None:
    """Queue again the tasks ``worker`` claimed but never started (claimed ahead, then given
    back: the worker stopped, or a failure of the same judge may open its breaker): their claim
    did not count as an attempt."""
    if task_ids:
        params = {"task_ids": list(task_ids), "worker": worker}
        await session.execute(_release(_dialect(session)), params)


@functools.cache
def _complete(dialect: str) -> Update:
    """Finish the tasks of ``task_ids`` that ``worker`` still holds, ``reused_ids`` as reused.

    PostgreSQL: with their results in the same statement (``results``, the JSON text of each or
    NULL, beside ``task_ids``): a second UPDATE per result to keep was an execution (and a
    round of the driver's work) per task. SQLite has no arrays: its results are kept after,
    by ``_KEEP_RESULT``."""
    values: dict[str, Any] = {
        "state": case((_among("reused_ids", dialect), TaskState.REUSED), else_=TaskState.DONE),
        "lease_owner": None,
        "lease_expires_at": None,
        "finished_at": _now(),
        "result": None,
        "error_type": None,
        "error_message": None,
    }
    if dialect != "postgresql":
        return update(_tasks).where(_held(dialect)).values(values).returning(_tasks.c.id)
    finished = (
        func.unnest(
            bindparam("task_ids", type_=ARRAY(Integer)), bindparam("results", type_=ARRAY(Text))
        )
        .table_valued(column("id", Integer), column("result", Text))
        .render_derived(name="finished")
    )
    return (
        update(_tasks)
        .where(_tasks.c.id == finished.c.id, _holder())
        .values(values | {"result": finished.c.result.cast(JSONB)})
        .returning(_tasks.c.id)
    )


_KEEP_RESULT = (
    update(_tasks)
    .where(_tasks.c.id == bindparam("task_id"))
    .values(result=bindparam("task_result", type_=_tasks.c.result.type))
)


async def complete(
    session: AsyncSession, worker: str, finished: Sequence[Completion], *, now: datetime
) -> set[int]:
    """Mark the tasks finished, in the transaction that stores their results: one UPDATE for
    all, with their results on PostgreSQL (SQLite: one executemany after it for the results to
    keep). Answers the ids of those the worker still held; the caller must store the results
    of those only (another worker may hold the others now)."""
    if not finished:
        return set()
    params: dict[str, Any] = {
        "task_ids": [f.task_id for f in finished],
        "reused_ids": [f.task_id for f in finished if f.reused],
        "worker": worker,
        "now": now,
    }
    dialect = _dialect(session)
    if dialect == "postgresql":
        params["results"] = [None if f.result is None else json.dumps(f.result) for f in finished]
    held = set((await session.execute(_complete(dialect), params)).scalars())
    results = [
        {"task_id": f.task_id, "task_result": f.result}
        for f in finished
        if f.task_id in held and f.result is not None
    ]
    if results and dialect != "postgresql":
        await session.execute(_KEEP_RESULT, results)
    return held
