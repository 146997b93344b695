"""The task figures the gateway's metrics export, read at the cost of the active work, not of the
whole tasks table.

The figures are exact counts of every task (by stage and state, failed ones by model, judge and
error type) and each stage's oldest queued task. Counting them over the table on every reading
(every 5 s in every replica) cost O(tasks ever planned): half a second of the database's time
per reading at a million tasks (``bench/telemetry_reading.py``), 2 ms now. What makes them
cheap:

- **A run at rest keeps its counts.** Every change of a task's state starts from queued or
  running, but one: a resume queues a run's failed and cancelled tasks (and its score task)
  again. So a run with no queued or running task keeps its counts until it is resumed, which
  counts in ``runs.resumes`` in the same transaction (migration 0011), or deleted. The tally
  keeps each such run's figures with the resume count they were read at, and their sums; a
  reading lists the runs (id, resumes: O(runs), a small table) and counts again only the runs
  that are new, resumed, or were active. A resume's tasks may all finish between two readings,
  so that no reading sees the run active: the counter tells all the same.
- **Active work through the state indexes.** The queued and running tasks (counts per run,
  the oldest queued per stage) are read through the indexes that lead with the state. The runs
  that have any are counted again through ``ix_tasks_run_id_stage_state``, but only their
  tasks not done: once a run is planned (``runs.planned_at``; a run is written in two
  transactions, see ``runs.planner``) its tasks are never added to, so its tasks per stage
  are counted once, and its done tasks are what the others leave of them. A run whose tasks
  are still being written is counted whole at every reading, and never kept. A reading
  costs O(runs + tasks not done in the runs in progress): 2 ms with an 8,000-task run in
  progress, 43 ms with a 200,000-task run a quarter queued (25 ms reading its 50,000 queued
  tasks, 19 ms counting its tasks not done, which reads them again).

Correctness of the order: the runs and their resume counts are read before the tasks, so a
resume committed meanwhile is either seen or leaves a count older than the figures kept, which
the next reading then finds different. A run is kept only when the statement that counted it
found none of its tasks queued or running. Rows deleted by hand inside a run (its prompts
deleted, not the run) are not noticed until the gateway restarts; the gateway deletes no task
itself.

Rejected: a counters table kept by the workers (or by triggers) on every change of state would
make every claim and settle of every worker update the same few rows, serialising concurrent
settles on their locks and adding a write to the hot path of every task; a high-water mark on
``finished_at`` would need an index on it (one more index write on every settle) and trusts the
workers' clocks and the order of commits.

SQLite takes the same path (the same statements, the same indexes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.run_models import ACTIVE_STATES, TaskState
from harmrank.gateway.runs import task_repository

StateKey = tuple[str, str]
"""(stage, state)"""
FailedKey = tuple[str, str, str, str]
"""(stage, model, judge, error type); "" where a task has none."""
_ACTIVE = frozenset(str(state) for state in ACTIVE_STATES)
_DONE = str(TaskState.DONE)
_NOT_DONE = tuple(state for state in TaskState if state != TaskState.DONE)
K = TypeVar("K", StateKey, FailedKey)


@dataclass
class RunFigures:
    """One run's task counts, read together."""

    resumes: int | None
    """The run's resume count read before the counts; None for a run listed after them, or
    one whose tasks were still being written."""
    counts: Counter[StateKey] = field(default_factory=Counter)
    failed: Counter[FailedKey] = field(default_factory=Counter)

    @property
    def at_rest(self) -> bool:
        """No task queued or running: the counts stay until a resume."""
        return self.resumes is not None and not any(
            n for (_, state), n in self.counts.items() if state in _ACTIVE
        )


@dataclass
class TaskTally:
    """The figures of the runs at rest, kept between readings, and their sums."""

    at_rest: dict[int, RunFigures] = field(default_factory=dict)
    counts: Counter[StateKey] = field(default_factory=Counter)
    failed: Counter[FailedKey] = field(default_factory=Counter)
    sizes: dict[int, Counter[str]] = field(default_factory=dict)
    """Each planned run's tasks per stage, once counted: they never change."""
    read: bool = False
    """Whether a reading succeeded: the first counts every run in one pass."""

    def keep(self, run_id: int, figures: RunFigures) -> None:
        self.drop(run_id)
        self.at_rest[run_id] = figures
        self.counts.update(figures.counts)
        self.failed.update(figures.failed)

    def drop(self, run_id: int) -> None:
        figures = self.at_rest.pop(run_id, None)
        if figures is not None:
            _take(self.counts, figures.counts)
            _take(self.failed, figures.failed)

    def forget(self, run_id: int) -> None:
        """The run is deleted."""
        self.drop(run_id)
        self.sizes.pop(run_id, None)


@dataclass(frozen=True)
class TaskFigures:
    """One reading: every task counted, and each stage's oldest queued task."""

    counts: dict[StateKey, int]
    failed: dict[FailedKey, int]
    oldest_queued: dict[str, datetime]


async def read(session: AsyncSession, tally: TaskTally) -> TaskFigures:
    """Count the tasks of every run: again those active, new or resumed since the last
    reading; from ``tally`` the others (which this keeps up to date)."""
    resumes = await task_repository.run_resumes(session)  # first: see the module's docstring
    active = await task_repository.active_task_groups(session)
    oldest: dict[str, datetime] = {}
    for _, stage, state, _, planned in active:
        if state == TaskState.QUEUED:
            oldest[str(stage)] = min(planned, oldest.get(str(stage), planned))
    for gone in [run for run in tally.sizes if run not in resumes]:
        tally.forget(gone)
    stale = {run for run, n in resumes.items() if n is None or _kept_resumes(tally, run) != n}
    recount = stale | {run for run, *_ in active}
    for run_id in recount:
        tally.drop(run_id)
    counted = await _count(session, tally, recount if tally.read else None, resumes)
    counts, failed = Counter(tally.counts), Counter(tally.failed)
    for run_id, figures in counted.items():
        if figures.at_rest:
            tally.keep(run_id, figures)
        counts.update(figures.counts)
        failed.update(figures.failed)
    tally.read = True
    return TaskFigures(counts=dict(+counts), failed=dict(+failed), oldest_queued=oldest)


def _kept_resumes(tally: TaskTally, run_id: int) -> int | None:
    figures = tally.at_rest.get(run_id)
    return None if figures is None else figures.resumes


async def _count(
    session: AsyncSession,
    tally: TaskTally,
    run_ids: set[int] | None,
    resumes: dict[int, int | None],
) -> dict[int, RunFigures]:
    """The figures of the runs ``run_ids`` (every run: None), each run's counts from one
    statement: every task of a run not counted before (its sizes noted in ``tally``), the tasks
    not done of the others (their done tasks are what the rest leaves of their sizes)."""
    sized = {run for run in run_ids or () if run in tally.sizes}
    unsized = None if run_ids is None else run_ids - sized
    counted: dict[int, RunFigures] = {}

    def of(run_id: int) -> RunFigures:
        return counted.setdefault(run_id, RunFigures(resumes.get(run_id)))

    if unsized is None or unsized:
        for run_id, stage, state, n in await task_repository.run_task_groups(session, unsized):
            of(run_id).counts[str(stage), str(state)] += n
        for run_id in unsized if unsized is not None else counted:
            if resumes.get(run_id) is not None:  # not while its tasks are being written
                tally.sizes[run_id] = _sizes(of(run_id).counts)
    if sized:
        groups = await task_repository.run_task_groups(session, sized, _NOT_DONE)
        for run_id, stage, state, n in groups:
            of(run_id).counts[str(stage), str(state)] += n
        for run_id in sized:
            _add_done(of(run_id).counts, tally.sizes[run_id])
    if run_ids is None or run_ids:
        for run_id, stage, model, judge, error, n in await task_repository.run_failed_groups(
            session, run_ids
        ):
            of(run_id).failed[str(stage), model or "", judge or "", error or ""] += n
    for run_id in run_ids if run_ids is not None else resumes:
        of(run_id)  # a run with no task is at rest too
    return counted


def _sizes(counts: Counter[StateKey]) -> Counter[str]:
    sizes: Counter[str] = Counter()
    for (stage, _), n in counts.items():
        sizes[stage] += n
    return sizes


def _add_done(counts: Counter[StateKey], sizes: Counter[str]) -> None:
    """Count as done what the run's other tasks leave of its sizes."""
    left = sizes - _sizes(counts)  # Counter subtraction keeps the positive remainders only
    for stage, n in left.items():
        counts[stage, _DONE] += n


def _take(totals: Counter[K], part: Counter[K]) -> None:
    """Subtract ``part`` from ``totals``, leaving out the keys that come to zero."""
    for key, n in part.items():
        totals[key] -= n
        if not totals[key]:
            del totals[key]
