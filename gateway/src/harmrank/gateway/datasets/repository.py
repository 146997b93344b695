"""The queries of datasets: the one lookup by name, descriptions, uploads and the listing.

A dataset is named by its unique name; every lookup by name goes through :func:`dataset_by_name`
or :func:`dataset_id_by_name`, and a name no dataset has is :class:`NoSuchDataset` (a 404).
Writes only flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    bindparam,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import NotFound
from harmrank.gateway.datasets.schemas import CategoryCount, DatasetDetail, DatasetItem
from harmrank.gateway.datasets.upload import PromptRecord
from harmrank.gateway.db import Annotator, Dataset, Exclusion, Model, Prompt, Ranking, Response
from harmrank.gateway.edge import text_problem

IN_CHUNK = 5000
INSERT_CHUNK = 5000
"""Prompts an INSERT (see insert_dataset)."""


class NoSuchDataset(NotFound):
    """The one answer to a dataset name that no dataset has."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no dataset named {name!r}")


# --- datasets -------------------------------------------------------------------------------


async def dataset_by_name(session: AsyncSession, name: str) -> Dataset:
    """The dataset's row, its import report included; :class:`NoSuchDataset` when unknown."""
    found = await session.scalar(select(Dataset).where(Dataset.name == _named(name)))
    if found is None:
        raise NoSuchDataset(name)
    return found


async def dataset_id_by_name(session: AsyncSession, name: str) -> int:
    """The dataset's id (without its import report, which may be large); :class:`NoSuchDataset`
    when unknown."""
    found = await session.scalar(_ID_BY_NAME, {"name": _named(name)})
    if found is None:
        raise NoSuchDataset(name)
    return int(found)


def _named(name: str) -> str:
    # Text the database cannot hold (a NUL: PostgreSQL refuses the query) names no dataset.
    if text_problem(name) is not None:
        raise NoSuchDataset(name)
    return name


_ID_BY_NAME = select(Dataset.id).where(Dataset.name == bindparam("name"))
_DATASET_ID = bindparam("dataset_id", type_=BigInteger)
_IN_DATASET = Prompt.dataset_id == _DATASET_ID
_FACTS = select(
    Dataset.id,
    Dataset.name,
    Dataset.source,
    Dataset.source_sha256,
    Dataset.created_at,
    select(func.count()).where(Prompt.dataset_id == Dataset.id).scalar_subquery(),
    select(func.count())
    .select_from(Response)
    .join(Prompt, Prompt.id == Response.prompt_id)
    .where(Prompt.dataset_id == Dataset.id)
    .scalar_subquery(),
).where(Dataset.name == bindparam("name"))
# One statement for the four grouped lists of a description: (what, key, count, order).
_GROUPS: CompoundSelect[Any] = union_all(
    select(literal("model"), Model.name, literal(0), Model.position).where(
        Model.id.in_(
            select(Response.model_id)
            .join(Prompt, Prompt.id == Response.prompt_id)
            .where(_IN_DATASET)
        )
    ),
    select(literal("ranking"), Annotator.name, func.count(), Annotator.id)
    .select_from(Ranking)
    .join(Annotator, Annotator.id == Ranking.annotator_id)
    .join(Prompt, Prompt.id == Ranking.prompt_id)
    .where(_IN_DATASET)
    .group_by(Annotator.id, Annotator.name),
    select(literal("exclusion"), Exclusion.reason, func.count(), literal(0))
    .where(Exclusion.dataset_id == _DATASET_ID)
    .group_by(Exclusion.reason),
    select(literal("category"), Prompt.category, func.count(), literal(0))
    .where(_IN_DATASET)
    .group_by(Prompt.category),
)


async def dataset_detail(session: AsyncSession, name: str) -> DatasetDetail:
    """The dataset's row and counts, in two statements; 404 when unknown."""
    row = (await session.execute(_FACTS, {"name": _named(name)})).one_or_none()
    if row is None:
        raise NoSuchDataset(name)
    groups: dict[str, list[tuple[Any, int, int]]] = {}
    for what, key, count, order in await session.execute(_GROUPS, {"dataset_id": row[0]}):
        groups.setdefault(what, []).append((key, int(count), int(order)))
    by_order = sorted(groups.get("ranking", []), key=lambda g: g[2])
    # Most frequent first, then by name, uncategorised last among equals (as PostgreSQL sorts).
    categories = sorted(groups.get("category", []), key=lambda g: (-g[1], g[0] is None, g[0] or ""))
    return DatasetDetail(
        name=row[1],
        source=row[2],
        source_sha256=row[3],
        created_at=row[4],
        prompts=int(row[5]),
        responses=int(row[6]),
        models=[model for model, _, _ in sorted(groups.get("model", []), key=lambda g: g[2])],
        rankings={annotator: count for annotator, count, _ in by_order},
        exclusions={reason: n for reason, n, _ in sorted(groups.get("exclusion", []))},
        categories=[CategoryCount(category=c, prompts=n) for c, n, _ in categories],
    )


async def dataset_exists(session: AsyncSession, name: str) -> bool:
    return await session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None


async def insert_dataset(
    session: AsyncSession,
    *,
    name: str,
    source: str,
    source_sha256: str,
    report: dict[str, Any],
    prompts: Sequence[PromptRecord],
) -> Dataset:
    row = Dataset(name=name, source=source, source_sha256=source_sha256, import_report=report)
    session.add(row)
    await session.flush()
    # In chunks: SQLAlchemy prepares an executemany's parameters on the event loop before it
    # sends any, seconds for a file at the body limit; between chunks the loop serves others.
    for start in range(0, len(prompts), INSERT_CHUNK):
        rows = [
            {
                "dataset_id": row.id,
                "external_id": p.external_id,
                "text": p.text,
                "normalised_text": p.normalised_text,
                "category": p.category,
            }
            for p in prompts[start : start + INSERT_CHUNK]
        ]
        await session.execute(insert(Prompt), rows)
    return row


async def list_datasets(
    session: AsyncSession, *, after: int | None, limit: int
) -> list[tuple[int, DatasetItem]]:
    """Datasets in id order after ``after``, each with its id (the page's key)."""
    prompts = select(func.count()).where(Prompt.dataset_id == Dataset.id).scalar_subquery()
    query = select(Dataset.id, Dataset.name, Dataset.source, Dataset.created_at, prompts)
    if after is not None:
        query = query.where(Dataset.id > after)
    found = await session.execute(query.order_by(Dataset.id).limit(limit))
    return [
        (key, DatasetItem(name=name, source=source, created_at=created_at, prompts=count))
        for key, name, source, created_at, count in found.all()
    ]


async def category_counts(session: AsyncSession, dataset_id: int) -> list[tuple[str | None, int]]:
    """Prompts per category, most frequent first; None counts the uncategorised."""
    found = await session.execute(
        select(Prompt.category, func.count())
        .where(Prompt.dataset_id == dataset_id)
        .group_by(Prompt.category)
        .order_by(func.count().desc(), Prompt.category)
    )
    return [(category, count) for category, count in found.all()]


# --- what other packages read of a dataset's results ---------------------------------


async def models_of(session: AsyncSession, dataset_id: int) -> list[tuple[int, str]]:
    """(id, name) of the models with responses in the dataset, in position order: the columns
    of its ranks. The models table is shared by every dataset, so it alone does not say which
    models a dataset's rank lists cover."""
    in_dataset = (
        select(Response.model_id).join(Response.prompt).where(Prompt.dataset_id == dataset_id)
    )
    found = await session.execute(
        select(Model.id, Model.name).where(Model.id.in_(in_dataset)).order_by(Model.position)
    )
    return [(model_id, name) for model_id, name in found.all()]


async def dataset_models(session: AsyncSession, dataset_id: int) -> tuple[str, ...]:
    """The names of :func:`models_of`."""
    return tuple(name for _, name in await models_of(session, dataset_id))


async def response_texts(
    session: AsyncSession, prompt_ids: Collection[int]
) -> dict[tuple[int, int], list[str]]:
    """The texts of each (prompt id, model id); several when generated more than once."""
    texts: dict[tuple[int, int], list[str]] = {}
    for chunk in in_chunks(prompt_ids):
        found = await session.execute(
            select(Response.prompt_id, Response.model_id, Response.text).where(
                Response.prompt_id.in_(chunk)
            )
        )
        for prompt_id, model_id, text in found.all():
            texts.setdefault((prompt_id, model_id), []).append(text)
    return texts


def in_chunks(ids: Collection[int]) -> list[list[int]]:
    # asyncpg takes at most 32767 bind parameters per statement; an IN list is one per value.
    ordered = sorted(ids)
    return [ordered[i : i + IN_CHUNK] for i in range(0, len(ordered), IN_CHUNK)]
