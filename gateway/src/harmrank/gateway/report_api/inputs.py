"""What a report is computed from, read from the database: a run's score inputs, or the
chosen annotators' per-prompt rankings of a dataset and the humans of its human reference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import NotFound
from harmrank.gateway.annotation.agreement import annotator_kinds
from harmrank.gateway.datasets import repository as datasets_repo
from harmrank.gateway.db.models import AnnotatorKind
from harmrank.gateway.db.run_models import Stage, Task
from harmrank.gateway.results import load_rankings
from harmrank.gateway.run_results.repository import run_row
from harmrank.gateway.runs import score_inputs, work
from harmrank.gateway.runs import service as runs_service
from harmrank.gateway.runs.queue import ClaimedTask, TaskFailed
from harmrank.metrics.aggregate_humans import REFERENCE_NAME
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report_ppi import PPISpec, platform_spec


@dataclass(frozen=True)
class RunInputs:
    run_id: int
    dataset: str
    score: work.ScoreWork


@dataclass(frozen=True)
class DatasetInputs:
    dataset: str
    source: str
    annotators: list[AnnotatorRankings]
    """The annotators named, in the order named (the human reference's name left out)."""
    names: tuple[str, ...] = ()
    """Every name asked for, in order, the human reference's included."""
    humans: tuple[str, ...] = ()
    """The humans the reference aggregates: every human of the dataset when the reference was
    named, else the named annotators of kind human."""
    unlisted: tuple[AnnotatorRankings, ...] = ()
    """Rankings of reference humans that were not named themselves."""
    reference_named: bool = False
    judges: tuple[str, ...] = ()
    """The named annotators of kind judge."""

    def ppi_spec(self, reference: str | None) -> PPISpec | None:
        """The jury and PPI part of the report: the human reference as the truth."""
        return platform_spec(reference, self.judges)


async def run_inputs(session: AsyncSession, run_id: int) -> RunInputs:
    """What the run's score task computed its report from, read again now; 404 until scored."""
    run = await runs_service.get_run(session, run_id)
    if not run.has_report:
        raise NotFound(
            f"run {run_id} has no report yet (it is {run.status}): the HTML report is made "
            "from a scored run"
        )
    task = await _score_task(session, run_id)
    try:
        score = await score_inputs.load_score(session, task)
    except TaskFailed as exc:
        raise NotFound(f"run {run_id}: {exc}") from None
    return RunInputs(run_id, (await run_row(session, run_id)).dataset, score)


async def _score_task(session: AsyncSession, run_id: int) -> ClaimedTask:
    task = await session.scalar(
        select(Task).where(Task.run_id == run_id, Task.stage == Stage.SCORE)
    )
    if task is None:
        raise NotFound(f"run {run_id} has no score task")
    return ClaimedTask(
        id=task.id,
        run_id=task.run_id,
        stage=task.stage,
        prompt_id=task.prompt_id,
        model_id=task.model_id,
        generation_key=task.generation_key,
        annotator_id=task.annotator_id,
        presentation_key=task.presentation_key,
        order_index=task.order_index,
        attempts=task.attempts,
        max_attempts=task.max_attempts,
    )


async def dataset_inputs(
    session: AsyncSession, dataset: str, annotators: Sequence[str]
) -> DatasetInputs:
    """The annotators' rankings (404 for an unknown dataset or an annotator with none in it).

    ``REFERENCE_NAME`` among ``annotators`` stands for the human reference over every human of
    the dataset; otherwise the reference aggregates the named humans (kind human).
    """
    row = await datasets_repo.dataset_by_name(session, dataset)
    named = [n for n in annotators if n != REFERENCE_NAME]
    rankings = await load_rankings(session, dataset, named) if named else {}
    kinds = await annotator_kinds(session, named)
    humans = [n for n in named if kinds[n] == AnnotatorKind.HUMAN]
    unlisted: list[AnnotatorRankings] = []
    wanted = REFERENCE_NAME in annotators
    if wanted:
        everyone = await load_rankings(session, dataset)
        every_kind = await annotator_kinds(session, list(everyone))
        humans = [n for n in everyone if every_kind[n] == AnnotatorKind.HUMAN]
        unlisted = [everyone[n] for n in humans if n not in rankings]
        if not humans:
            raise NotFound(f"dataset {dataset!r} has no human rankings for {REFERENCE_NAME!r}")
    return DatasetInputs(
        row.name,
        row.source,
        [rankings[name] for name in named],
        tuple(annotators),
        tuple(humans),
        tuple(unlisted),
        wanted,
        tuple(n for n in named if kinds[n] == AnnotatorKind.JUDGE),
    )
