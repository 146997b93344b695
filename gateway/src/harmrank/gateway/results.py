"""The repository of reads over the result tables: every query on them lives here.

A dataset is named by its unique name; an unknown name raises the datasets'
:class:`~harmrank.gateway.datasets.repository.NoSuchDataset`. Only rankings
with the empty ``presentation_key`` are read as an annotator's rankings: those are the ones
that stand for a prompt, one each, as the study's were stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import NotFound
from harmrank.gateway.datasets import repository as datasets_repo

# Named here too for the modules that read a dataset's models through this one.
from harmrank.gateway.datasets.repository import dataset_models as dataset_models
from harmrank.gateway.db.models import (
    Annotator,
    Exclusion,
    Prompt,
    Ranking,
    Response,
)
from harmrank.metrics.rankings import AnnotatorRankings


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    source: str
    source_sha256: str | None
    prompts: int
    responses: int
    rankings: dict[str, int]
    """Rankings per annotator name."""
    exclusions: dict[str, int]
    """Excluded source rows per reason."""


@dataclass(frozen=True)
class ExcludedRow:
    """A source row an import dropped; ``detail`` is from the import report, "" when none."""

    source_file: str
    line: int
    annotator: str | None
    reason: str
    raw_value: str
    detail: str = ""


async def load_rankings(
    session: AsyncSession, dataset: str, annotators: Sequence[str] | None = None
) -> dict[str, AnnotatorRankings]:
    """Each annotator's rankings in the dataset (all annotators when ``annotators`` is None).

    Models are in canonical position order, prompts are named by external id and in the order
    they were stored, and categories are given when any prompt has one.
    """
    dataset_id = await datasets_repo.dataset_id_by_name(session, dataset)
    models = await dataset_models(session, dataset_id)
    rows = await _ranking_rows(session, dataset_id, annotators)
    missing = set(annotators or ()) - set(rows)
    if missing:
        raise NotFound(f"dataset {dataset!r} has no rankings by {', '.join(sorted(missing))}")
    names = annotators if annotators is not None else list(rows)
    return {name: _build(name, models, rows[name]) for name in names}


async def dataset_summary(session: AsyncSession, dataset: str) -> DatasetSummary:
    row = await datasets_repo.dataset_by_name(session, dataset)
    prompts = await session.scalar(
        select(func.count()).select_from(Prompt).where(Prompt.dataset_id == row.id)
    )
    responses = await session.scalar(
        select(func.count()).select_from(Response).join(Prompt).where(Prompt.dataset_id == row.id)
    )
    return DatasetSummary(
        row.name,
        row.source,
        row.source_sha256,
        prompts=prompts or 0,
        responses=responses or 0,
        rankings=await _rankings_per_annotator(session, row.id),
        exclusions=await _exclusions_per_reason(session, row.id),
    )


async def list_exclusions(session: AsyncSession, dataset: str) -> list[ExcludedRow]:
    """Every row the dataset's import dropped, in source order (file, then line)."""
    row = await datasets_repo.dataset_by_name(session, dataset)
    details: dict[str, str] = row.import_report.get("exclusion_details", {})
    found = await session.scalars(
        select(Exclusion)
        .where(Exclusion.dataset_id == row.id)
        .order_by(Exclusion.source_file, Exclusion.line, Exclusion.id)
    )
    return [
        ExcludedRow(
            e.source_file,
            e.line,
            e.annotator,
            e.reason,
            e.raw_value,
            details.get(f"{e.source_file}:{e.line}", ""),
        )
        for e in found
    ]


# Per annotator: (external id, category, ranks) in storage order.
_RankRows = list[tuple[str, str | None, list[int]]]


async def _ranking_rows(
    session: AsyncSession, dataset_id: int, annotators: Sequence[str] | None
) -> dict[str, _RankRows]:
    query = (
        select(Annotator.name, Prompt.external_id, Prompt.category, Ranking.ranks)
        .join(Ranking.prompt)
        .join(Ranking.annotator)
        .where(Prompt.dataset_id == dataset_id, Ranking.presentation_key == "")
        .order_by(Annotator.id, Ranking.id)
    )
    if annotators is not None:
        query = query.where(Annotator.name.in_(annotators))
    rows: dict[str, _RankRows] = {}
    for name, external_id, category, ranks in await session.execute(query):
        rows.setdefault(name, []).append((external_id, category, ranks))
    return rows


def _build(name: str, models: Sequence[str], rows: _RankRows) -> AnnotatorRankings:
    ranks = {external_id: ranks for external_id, _, ranks in rows}
    categories = {external_id: category for external_id, category, _ in rows}
    has_categories = any(c is not None for c in categories.values())
    return AnnotatorRankings.build(name, models, ranks, categories if has_categories else None)


async def _rankings_per_annotator(session: AsyncSession, dataset_id: int) -> dict[str, int]:
    found = await session.execute(
        select(Annotator.name, func.count(Ranking.id))
        .join(Ranking.annotator)
        .join(Ranking.prompt)
        .where(Prompt.dataset_id == dataset_id)
        .group_by(Annotator.id, Annotator.name)
        .order_by(Annotator.id)
    )
    return dict(found.all())


async def _exclusions_per_reason(session: AsyncSession, dataset_id: int) -> dict[str, int]:
    found = await session.execute(
        select(Exclusion.reason, func.count())
        .where(Exclusion.dataset_id == dataset_id)
        .group_by(Exclusion.reason)
        .order_by(Exclusion.reason)
    )
    return dict(found.all())
