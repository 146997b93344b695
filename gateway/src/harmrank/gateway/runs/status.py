"""A run's status and progress, derived from its tasks by query; nothing of it is stored.

Status, first rule that holds:

0. while its tasks are still being written (``planned_at`` empty; ``planner.plan_run``):
   ``queued`` when none of them has started or ended, else ``running``; whatever its first
   tasks say, it is not finished;
1. ``queued``: tasks wait and none has started or ended (reused ones aside);
2. ``running``: a task is queued or running (a cancelled run stays ``running`` until its last
   running task finished or was abandoned at its heartbeat);
3. ``cancelled``: a task was cancelled;
4. ``done``: the score task succeeded and every generate and judge task succeeded;
5. ``done_with_failures``: the score task succeeded but some generate or judge tasks failed
   (the run's ``failures`` say which model or judge and why; the report covers what
   succeeded and marks the annotators with missing rankings);
6. ``failed``: otherwise.

Counts are read only for the runs a request shows: one run, one page of runs, or the batches of
runs a status filter looks through. A page never groups the tasks of every run, so it costs the
same however many runs and tasks the database holds. (The queries are ``repository``'s.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.run_models import SUCCEEDED_STATES, Stage, TaskState
from harmrank.gateway.runs import repository
from harmrank.gateway.runs.schemas import RunStatus, StageProgress

Progress = dict[Stage, StageProgress]
STATUS_SCAN_BATCH = 100
"""Runs read at once while a status filter looks for a page of matching runs."""


@dataclass(frozen=True)
class RunFacts:
    """What a run page shows of one run: its row, prompt count, report flag and progress."""

    id: int
    spec: dict[str, Any]
    created_at: datetime
    cancelled_at: datetime | None
    planned_at: datetime | None
    prompts: int
    has_report: bool
    progress: Progress

    @property
    def status(self) -> RunStatus:
        return status_of(self.progress, planned=self.planned_at is not None)


async def one_run(session: AsyncSession, run_id: int) -> RunFacts | None:
    """The run with its progress, in three queries; None when there is no such run."""
    found = await _with_progress(session, await repository.run_facts(session, run_id=run_id))
    return found[0] if found else None


async def run_page(
    session: AsyncSession,
    *,
    status: RunStatus | None = None,
    before_id: int | None = None,
    limit: int,
) -> list[RunFacts]:
    """Up to ``limit`` runs older than ``before_id``, newest first, optionally of one status.

    Without a filter this is three queries. With one, runs are read in batches, newest first,
    until ``limit`` of them matched or none is left: how much is read depends on how many
    runs are skipped, not on how many tasks or runs there are in all.
    """
    batch = limit if status is None else max(limit, STATUS_SCAN_BATCH)
    found: list[RunFacts] = []
    while True:
        rows = await repository.run_facts(session, before_id=before_id, limit=batch)
        facts = await _with_progress(session, rows)
        found += [f for f in facts if status is None or f.status == status]
        if len(found) >= limit or len(facts) < batch:
            return found[:limit]
        before_id = facts[-1].id


async def run_statuses(
    session: AsyncSession,
    *,
    run_ids: Sequence[int] | None = None,
    status: RunStatus | None = None,
    before_id: int | None = None,
    limit: int | None = None,
) -> list[tuple[RunFacts, RunStatus]]:
    """Runs with their status, newest first: some ids, or a page (see :func:`run_page`)."""
    if run_ids is None:
        page = await run_page(session, status=status, before_id=before_id, limit=limit or 2**31 - 1)
        return [(facts, facts.status) for facts in page]
    ones = [await one_run(session, run_id) for run_id in sorted(set(run_ids), reverse=True)]
    return [
        (facts, facts.status)
        for facts in ones
        if facts is not None
        and (status is None or facts.status == status)
        and (before_id is None or facts.id < before_id)
    ][:limit]


async def run_progress(session: AsyncSession, run_ids: Sequence[int]) -> dict[int, Progress]:
    """Per run: task counts per stage and state, every stage and state present (zeros too)."""
    progress = {run_id: _zeros() for run_id in run_ids}
    if run_ids:
        await _read_progress(session, min(run_ids), max(run_ids), progress)
    return progress


async def _with_progress(session: AsyncSession, rows: Sequence[Any]) -> list[RunFacts]:
    if not rows:
        return []
    low, high = rows[-1][0], rows[0][0]
    progress = {row[0]: _zeros() for row in rows}
    await _read_progress(session, low, high, progress)
    # The report flags are read after the counts, in a later snapshot: a score task commits its
    # report with its own success, and a report is only ever replaced, never deleted, so a run
    # the counts say is scored has its report here. (Read with the rows, a score committing
    # between the two reads made a run done without its report.)
    reported = await repository.reported(session, low, high)
    return [
        RunFacts(
            id=run_id,
            spec=spec,
            created_at=created_at,
            cancelled_at=cancelled_at,
            planned_at=planned_at,
            prompts=int(prompts),
            has_report=run_id in reported,
            progress=progress[run_id],
        )
        for run_id, spec, created_at, cancelled_at, planned_at, prompts in rows
    ]


async def _read_progress(
    session: AsyncSession, low: int, high: int, into: dict[int, Progress]
) -> None:
    """Fill ``into`` with the counts of the runs it holds, whose ids lie in [low, high]."""
    for run_id, stage, state, n in await repository.task_counts(session, low, high):
        if run_id in into:
            into[run_id][stage][state] = int(n)


def status_of(progress: Progress, *, planned: bool = True) -> RunStatus:
    """The status rules above, applied to a run's progress counts (``planned``: its tasks are
    all written)."""
    states = {state: sum(stage[state] for stage in progress.values()) for state in TaskState}
    ended = states[TaskState.DONE] + states[TaskState.FAILED] + states[TaskState.CANCELLED]
    scored = sum(progress[Stage.SCORE][state] for state in SUCCEEDED_STATES)
    active = states[TaskState.QUEUED] + states[TaskState.RUNNING]
    if not planned:
        return "queued" if states[TaskState.RUNNING] == 0 and ended == 0 else "running"
    if states[TaskState.RUNNING] == 0 and states[TaskState.QUEUED] > 0 and ended == 0:
        return "queued"
    if active > 0:
        return "running"
    if states[TaskState.CANCELLED] > 0:
        return "cancelled"
    if scored == 0:
        return "failed"
    lost = progress[Stage.GENERATE][TaskState.FAILED] + progress[Stage.JUDGE][TaskState.FAILED]
    return "done_with_failures" if lost else "done"


def _zeros() -> Progress:
    return {stage: dict.fromkeys(TaskState, 0) for stage in Stage}
