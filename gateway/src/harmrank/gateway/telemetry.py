"""The gateway's task-queue metrics: tasks per stage and state, finished tasks, queue age.

The numbers live in the database (workers in other processes move tasks along), so a refresher
task reads them every few seconds and a custom collector exports the last reading at scrape
time; a scrape never waits on the database. Every gateway replica exports the same database-wide
figures, so dashboards aggregate them with ``max``, never ``sum``.

``harmrank_tasks_finished_total`` counts the finished tasks that exist (done, failed, reused):
it only grows while runs are kept, and ``rate()`` treats a drop (runs deleted) as a reset.

The figures are exact counts of every task, yet a reading does not scan the tasks table: a run
with no queued or running task keeps its counts until it is resumed, so the refresher keeps them
and counts again only what is active or changed (``task_tally`` says how, and why so).

``harmrank_report_missing_rankings_total`` adds up, per judge, the rankings missing from each
run report written since the gateway started (each reading reads only the newer reports), so
``increase()`` over it says how many rankings the reports of a time range lack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.gateway import task_tally
from harmrank.gateway.db.run_models import FINISHED_STATES, Stage, TaskState
from harmrank.gateway.runs import missing
from harmrank.gateway.task_tally import TaskTally

DEFAULT_INTERVAL_SECONDS = 5.0
REPORT_OVERLAP = timedelta(minutes=5)
"""How far back each reading looks again for reports: a report's time is set when its
transaction writes it, so one that commits after a later-stamped one was read is still found
(the reports counted already are skipped by run id)."""
F = TypeVar("F", GaugeMetricFamily, CounterMetricFamily)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSnapshot:
    """One reading of the task table."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    failed: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    """Failed tasks by (stage, model, judge, error_type); "" where a task has none."""
    oldest_queued: dict[str, datetime] = field(default_factory=dict)
    taken_at: float = 0.0

    def count(self, stage: str, state: str) -> int:
        return self.counts.get((stage, state), 0)


async def read_snapshot(session: AsyncSession, tally: TaskTally) -> TaskSnapshot:
    """Count tasks by stage and state, and find each stage's oldest queued task: again for the
    runs active or changed since the last reading, from ``tally`` for the others."""
    figures = await task_tally.read(session, tally)
    return TaskSnapshot(
        counts=figures.counts,
        failed=figures.failed,
        oldest_queued={stage: _aware(at) for stage, at in figures.oldest_queued.items()},
        taken_at=time.time(),
    )


@dataclass
class ReportTally:
    """Missing rankings per judge in the run reports written since the first reading."""

    missing: dict[str, int] = field(default_factory=dict)
    since: datetime | None = None
    """The newest report time read; None before the first reading."""
    counted: dict[int, datetime] = field(default_factory=dict)
    """The recent reports read (run id: report time), not to be counted twice."""


async def read_reports(session: AsyncSession, tally: ReportTally) -> None:
    """Add the missing rankings of the reports written since the last reading; the first
    reading only notes the reports there are (the counter starts at zero, as counters do)."""
    first = tally.since is None
    if tally.since is None:
        newest = await missing.newest_report_at(session)
        tally.since = _aware(newest) if newest is not None else datetime.now(UTC)
    for report in await missing.since(session, tally.since - REPORT_OVERLAP):
        if report.run_id in tally.counted:
            continue
        at = _aware(report.created_at)
        tally.counted[report.run_id] = at
        tally.since = max(tally.since, at)
        for judge, n in report.missing.items() if not first else ():
            tally.missing[judge] = tally.missing.get(judge, 0) + n
    horizon = tally.since - REPORT_OVERLAP
    tally.counted = {run: at for run, at in tally.counted.items() if at >= horizon}


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the gateway stores UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class TaskCollector(Collector):
    """Exports the latest snapshot; nothing until the first reading succeeded."""

    def __init__(self) -> None:
        self.snapshot: TaskSnapshot | None = None
        self.tasks = TaskTally()
        self.reports = ReportTally()
        self.failures = 0

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        yield CounterMetricFamily(
            "harmrank_tasks_refresh_failures_total",
            "Failed readings of the task table by the gateway's metrics refresher.",
            value=self.failures,
        )
        if snapshot is None:
            return
        yield from (_tasks(snapshot), _finished(snapshot), _oldest(snapshot), _failed(snapshot))
        yield _missing(self.reports)
        yield GaugeMetricFamily(
            "harmrank_tasks_refreshed_timestamp_seconds",
            "When the task figures were last read from the database (Unix time).",
            value=snapshot.taken_at,
        )


def _tasks(snapshot: TaskSnapshot) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "harmrank_tasks",
        "Tasks in the database by stage and state (the queue: state queued/running).",
        labels=["stage", "state"],
    )
    return _per_stage(family, snapshot, TaskState)


def _finished(snapshot: TaskSnapshot) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "harmrank_tasks_finished_total",
        "Finished tasks by stage and outcome (done, failed, reused).",
        labels=["stage", "outcome"],
    )
    return _per_stage(family, snapshot, FINISHED_STATES)


def _per_stage(family: F, snapshot: TaskSnapshot, states: Iterable[TaskState]) -> F:
    """The family with a sample per stage and state, zeros included."""
    for stage in Stage:
        for state in states:
            family.add_metric([stage.value, state.value], snapshot.count(stage, state))
    return family


def _failed(snapshot: TaskSnapshot) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "harmrank_tasks_failed",
        "Failed tasks by stage, model (generate), judge (judge) and error type; a zero sample "
        "per stage with empty labels keeps each stage's series present.",
        labels=["stage", "model", "judge", "error_type"],
    )
    for stage in Stage:
        family.add_metric([stage.value, "", "", ""], 0)
    for labels, n in sorted(snapshot.failed.items()):
        family.add_metric(list(labels), n)
    return family


def _oldest(snapshot: TaskSnapshot) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "harmrank_tasks_oldest_queued_age_seconds",
        "Age of the oldest queued task per stage (0 when none is queued).",
        labels=["stage"],
    )
    now = datetime.fromtimestamp(snapshot.taken_at, UTC)
    for stage in Stage:
        since = snapshot.oldest_queued.get(stage.value)
        family.add_metric([stage.value], (now - since).total_seconds() if since else 0.0)
    return family


def _missing(tally: ReportTally) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "harmrank_report_missing_rankings_total",
        "Rankings missing from the run reports written since the gateway started, by judge "
        "(prompts of a run the judge ranked none of); a zero sample with an empty judge keeps "
        "the series present.",
        labels=["judge"],
    )
    family.add_metric([""], 0)
    for judge, n in sorted(tally.missing.items()):
        family.add_metric([judge], n)
    return family


async def refresh_forever(
    collector: TaskCollector, sessions: async_sessionmaker[AsyncSession], interval: float
) -> None:
    """Read the task table every ``interval`` seconds until cancelled."""
    while True:
        try:
            async with sessions() as session:
                collector.snapshot = await read_snapshot(session, collector.tasks)
                await read_reports(session, collector.reports)
        except Exception:  # the database being away must not stop the gateway's metrics
            collector.failures += 1
            logger.warning("could not read the task figures", exc_info=True)
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def task_telemetry(
    app: FastAPI, interval_seconds: float = DEFAULT_INTERVAL_SECONDS
) -> AsyncIterator[None]:
    """Export the task metrics in ``app.state.registry`` while the app runs (in its lifespan,
    after ``app.state.sessions`` is set). Entering it twice for one app is a no-op."""
    if getattr(app.state, "task_collector", None) is not None:
        yield
        return
    registry: CollectorRegistry = app.state.registry
    collector = TaskCollector()
    registry.register(collector)
    app.state.task_collector = collector
    refresher = asyncio.create_task(
        refresh_forever(collector, app.state.sessions, interval_seconds)
    )
    try:
        yield
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        registry.unregister(collector)
        app.state.task_collector = None
