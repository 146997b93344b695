"""What a report is rendered or computed from, read from the database: the report a run's
score task stored, or the chosen annotators' per-prompt rankings of a dataset and the humans
of its human reference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import NotFound
from harmrank.gateway.annotation import budget
from harmrank.gateway.datasets import repository as datasets_repo
from harmrank.gateway.db.models import AnnotatorKind
from harmrank.gateway.explore import repository as explore_repo
from harmrank.gateway.listings.repository import run_row
from harmrank.gateway.listings.scope import ResultScope
from harmrank.gateway.results.repository import annotator_kinds, load_rankings
from harmrank.gateway.runs import repository as runs_repository
from harmrank.gateway.runs import service as runs_service
from harmrank.metrics.aggregate_humans import REFERENCE_NAME
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import Report
from harmrank.metrics.report_ppi import PPISpec, SamplingDesign, platform_spec
from harmrank.metrics.serialize import from_jsonable


@dataclass(frozen=True)
class RunInputs:
    run_id: int
    dataset: str
    report: Report
    """The report the run's score task stored, read back."""
    notes: dict[str, Any]
    """What the score task noted about the run (prompts, judges, humans)."""


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
    design: SamplingDesign | None = None
    """How the annotation page drew the prompts humans label, when it had a label budget."""

    def ppi_spec(self, reference: str | None) -> PPISpec | None:
        """The jury and PPI part of the report: the human reference as the truth, weighted by
        the stored draws when there are any."""
        return platform_spec(reference, self.judges, self.design)


async def dataset_version(session: AsyncSession, dataset: str) -> Any:
    """What a report of the dataset is computed from, in brief: the dataset's id, the
    explorer's fingerprint of its prompts, responses and rankings (counts, newest ids, a
    checksum of every rank), and its label-budget draws. Any upload, import, annotation or
    judge ranking changes it; 404 for an unknown dataset."""
    dataset_id = await datasets_repo.dataset_id_by_name(session, dataset)
    scope = ResultScope(dataset_id=dataset_id, dataset=dataset)
    marks = await explore_repo.fingerprint(session, scope)
    return (dataset_id, marks, await budget.design(session, dataset_id))


async def run_inputs(session: AsyncSession, run_id: int) -> RunInputs:
    """The report the run's score task stored (404 until scored), never recomputed.

    The run's row is read once (:func:`run_row`, its dataset's name with it); the run's status,
    which costs its task counts and failures, only when there is no report, for the 404 to
    say what the run is doing."""
    row = await run_row(session, run_id)
    found = await runs_repository.load_report(session, run_id)
    stored = dict(found if found is not None else await runs_service.get_report(session, run_id))
    notes = stored.pop("run", None) or {}
    try:
        report = from_jsonable(Report, stored)
    except (ValueError, TypeError) as exc:
        # Stored by an older version in another shape: scoring the run again rewrites it.
        raise NotFound(
            f"run {run_id}: the stored report cannot be read ({exc}); resume the run to score "
            "it again"
        ) from None
    return RunInputs(run_id, row.dataset, report, notes)


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
        await budget.design(session, row.id),
    )
