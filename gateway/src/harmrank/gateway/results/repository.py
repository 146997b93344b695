"""The repository of the result tables (prompts, models, responses, annotators, rankings) as
the platform reads them by dataset and as runs read and write them. (A dataset's own rows, its
listing and its pages are ``datasets.repository``'s.)

A dataset is named by its unique name; an unknown name raises the datasets'
:class:`~harmrank.gateway.datasets.repository.NoSuchDataset`. Only rankings
with the empty ``presentation_key`` are read as an annotator's rankings: those are the ones
that stand for a prompt, one each, as the study's were stored.

Every write of a result is an insert-if-absent on the row's natural key (``ON CONFLICT DO
NOTHING``, which PostgreSQL and SQLite both speak), so a retried or re-claimed task, or two runs
racing for the same result, never store it twice and never fail on the duplicate. (A run's
report is the exception: its score task replaces an older one, ``runs.repository.replace_row``.)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, Row, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import Conflict, NotFound
from harmrank.gateway.datasets import repository as datasets_repo

# Named here too for the modules that read a dataset's models through this one.
from harmrank.gateway.datasets.repository import dataset_models as dataset_models
from harmrank.gateway.db import (
    Annotator,
    AnnotatorKind,
    Base,
    Dataset,
    Exclusion,
    Model,
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


# --- what runs read and write -----------------------------------------------------------

ResponseKey = tuple[int, int, str]
"""(prompt id, model id, generation key)"""
RankingKey = tuple[int, int, str]
"""(annotator id, prompt id, presentation key)"""


async def insert_if_absent(
    session: AsyncSession, table: type[Base], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert the rows; a row whose unique key is taken is skipped, not an error."""
    if not rows:
        return
    statement = _insert_if_absent(session.get_bind().dialect.name, table)
    await session.execute(statement, list(rows))


@functools.cache
def _insert_if_absent(dialect_name: str, table: type[Base]) -> Insert:
    # Built once per table: the worker stores every finished batch with it.
    if dialect_name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return postgresql.insert(table).on_conflict_do_nothing()


async def ensure_models(session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
    """Ids of the models by name; a model never seen before goes after the known ones."""
    known = await _ids(session, Model, names)
    missing = [n for n in names if n not in known]
    if missing:
        top = await session.scalar(select(func.max(Model.position)))
        start = -1 if top is None else top
        rows = [
            {"name": n, "display_name": n, "position": start + 1 + i} for i, n in enumerate(missing)
        ]
        await insert_if_absent(session, Model, rows)
        known = await _ids(session, Model, names)
    return _all_found(known, names, "model")


async def ensure_judges(session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
    """Annotator ids of the judges by name, registering new ones as judges."""
    found = await session.execute(
        select(Annotator.name, Annotator.kind).where(Annotator.name.in_(names))
    )
    for name, kind in found:
        if kind != AnnotatorKind.JUDGE:
            raise Conflict(f"annotator {name!r} exists as a {kind} annotator, not a judge")
    rows = [
        {"name": n, "kind": AnnotatorKind.JUDGE, "details": {"judge_service": n}} for n in names
    ]
    await insert_if_absent(session, Annotator, rows)
    return _all_found(await _ids(session, Annotator, names), names, "judge")


async def _ids(
    session: AsyncSession, table: type[Model] | type[Annotator], names: Sequence[str]
) -> dict[str, int]:
    found = await session.execute(select(table.name, table.id).where(table.name.in_(names)))
    return dict(found.all())


def _all_found(ids: dict[str, int], names: Sequence[str], what: str) -> dict[str, int]:
    # Only when a concurrent request took the position a new model was given: a retry succeeds.
    missing = [n for n in names if n not in ids]
    if missing:
        raise Conflict(f"could not register {what} {', '.join(missing)} (concurrent change); retry")
    return ids


async def model_positions(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
    found = await session.execute(select(Model.id, Model.position).where(Model.id.in_(ids)))
    return dict(found.all())


async def dataset_names(session: AsyncSession) -> list[str]:
    """Every dataset's name, sorted: what a run may name."""
    return list(await session.scalars(select(Dataset.name).order_by(Dataset.name)))


async def dataset_categories(session: AsyncSession, dataset: str) -> list[str]:
    """The categories the dataset's prompts have, sorted (uncategorised prompts have none)."""
    query = (
        select(Prompt.category)
        .join(Dataset, Prompt.dataset_id == Dataset.id)
        .where(Dataset.name == dataset, Prompt.category.is_not(None))
        .distinct()
    )
    return sorted(c for c in await session.scalars(query) if c is not None)


async def model_names(session: AsyncSession, ids: set[int | None]) -> dict[int | None, str]:
    found = await session.execute(select(Model.id, Model.name).where(Model.id.in_(ids)))
    return dict(found.all())


async def response_texts(
    session: AsyncSession, prompts: set[int | None], models: set[int]
) -> dict[ResponseKey, str]:
    """The responses' texts by natural key, of every model and generation key given."""
    found = await session.execute(
        select(Response.prompt_id, Response.model_id, Response.generation_key, Response.text).where(
            Response.prompt_id.in_(prompts), Response.model_id.in_(models)
        )
    )
    return {(prompt_id, model_id, key): text for prompt_id, model_id, key, text in found}


async def annotator_ranks(
    session: AsyncSession, kinds: Sequence[AnnotatorKind], prompts: Sequence[int]
) -> Sequence[Row[str, AnnotatorKind, int, list[int]]]:
    """(name, kind, prompt id, ranks) of the per-prompt rankings (presentation key '') that
    annotators of the kinds stored for the prompts, by annotator and in storage order."""
    found = await session.execute(
        select(Annotator.name, Annotator.kind, Ranking.prompt_id, Ranking.ranks)
        .join(Ranking.annotator)
        .where(
            Annotator.kind.in_(kinds),
            Ranking.presentation_key == "",
            Ranking.prompt_id.in_(list(prompts)),
        )
        .order_by(Annotator.id, Ranking.id)
    )
    return found.all()


async def prompt_ids(
    session: AsyncSession, dataset: int, categories: Sequence[str] | None
) -> list[int]:
    """The dataset's prompt ids in dataset order, of the categories when some are named."""
    query = select(Prompt.id).where(Prompt.dataset_id == dataset).order_by(Prompt.id)
    if categories is not None:
        query = query.where(Prompt.category.in_(categories))
    return list(await session.scalars(query))


async def annotator_kinds(session: AsyncSession, names: Sequence[str]) -> dict[str, AnnotatorKind]:
    """The kind of each named annotator."""
    found = await session.execute(
        select(Annotator.name, Annotator.kind).where(Annotator.name.in_(names))
    )
    return {n: AnnotatorKind(k) for n, k in found.all()}
