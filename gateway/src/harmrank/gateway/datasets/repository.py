"""Every query behind the dataset, results and rankings-import endpoints.

Listing functions page by keyset on the row id (``after``), never by offset: a page costs the
same wherever it is, and rows inserted meanwhile neither repeat nor vanish. They take a dataset
id, optional filters, and an optional ``prompt_ids`` restriction (ids or a subquery of them), so
a run can reuse them for its own prompt set. Writes only flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Select,
    bindparam,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import NotFound
from harmrank.gateway.datasets.upload import PromptRecord
from harmrank.gateway.db.models import (
    Annotator,
    AnnotatorKind,
    Dataset,
    Exclusion,
    Model,
    Prompt,
    Ranking,
    Response,
)

PromptIds = Collection[int] | Select[int]
RowIds = Collection[int] | Select[int] | CompoundSelect[int]
"""Row ids, or a query of them, that a listing keeps to (a run's own results, say)."""


class _Keyed(Protocol):
    @property
    def id(self) -> int: ...


_Row = TypeVar("_Row", bound=_Keyed)
EXPORT_BATCH = 500
IN_CHUNK = 5000


@dataclass(frozen=True)
class DatasetRow:
    id: int
    name: str
    source: str
    created_at: datetime
    prompts: int


@dataclass(frozen=True)
class DatasetFacts:
    """A dataset's row and every count its description shows, in two queries."""

    id: int
    name: str
    source: str
    source_sha256: str | None
    created_at: datetime
    prompts: int
    responses: int
    models: list[str]
    """Models with responses, in position order."""
    rankings: dict[str, int]
    """Rankings per annotator, in annotator order."""
    exclusions: dict[str, int]
    """Excluded source rows per reason, in reason order."""
    categories: list[tuple[str | None, int]]
    """Prompts per category, most frequent first; None counts the uncategorised."""


@dataclass(frozen=True)
class ResponseRecord:
    id: int
    prompt_id: str
    prompt: str
    model: str
    text: str
    generation_key: str
    source: str
    created_at: datetime


@dataclass(frozen=True)
class RankingRecord:
    id: int
    annotator: str
    annotator_kind: str
    prompt_id: str
    ranks: list[int]
    raw_value: str
    normalisations: list[dict[str, str]]
    source: str
    presentation_key: str
    created_at: datetime


@dataclass(frozen=True)
class StoredRanking:
    id: int
    ranks: list[int]


# --- datasets -------------------------------------------------------------------------------


async def dataset_by_name(session: AsyncSession, name: str) -> Dataset:
    found = await session.scalar(select(Dataset).where(Dataset.name == name))
    if found is None:
        raise NotFound(f"no dataset named {name!r}")
    return found


async def dataset_id_by_name(session: AsyncSession, name: str) -> int:
    """The dataset's id (without its import report, which may be large); 404 when unknown."""
    found = await session.scalar(_ID_BY_NAME, {"name": name})
    if found is None:
        raise NotFound(f"no dataset named {name!r}")
    return int(found)


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


async def dataset_facts(session: AsyncSession, name: str) -> DatasetFacts:
    """The dataset's row and counts, in two statements; 404 when unknown."""
    row = (await session.execute(_FACTS, {"name": name})).one_or_none()
    if row is None:
        raise NotFound(f"no dataset named {name!r}")
    groups: dict[str, list[tuple[Any, int, int]]] = {}
    for what, key, count, order in await session.execute(_GROUPS, {"dataset_id": row[0]}):
        groups.setdefault(what, []).append((key, int(count), int(order)))
    by_order = sorted(groups.get("ranking", []), key=lambda g: g[2])
    # Most frequent first, then by name, uncategorised last among equals (as PostgreSQL sorts).
    categories = sorted(groups.get("category", []), key=lambda g: (-g[1], g[0] is None, g[0] or ""))
    return DatasetFacts(
        id=row[0],
        name=row[1],
        source=row[2],
        source_sha256=row[3],
        created_at=row[4],
        prompts=int(row[5]),
        responses=int(row[6]),
        models=[model for model, _, _ in sorted(groups.get("model", []), key=lambda g: g[2])],
        rankings={annotator: count for annotator, count, _ in by_order},
        exclusions={reason: n for reason, n, _ in sorted(groups.get("exclusion", []))},
        categories=[(category, n) for category, n, _ in categories],
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
    rows = [
        {
            "dataset_id": row.id,
            "external_id": p.external_id,
            "text": p.text,
            "normalised_text": p.normalised_text,
            "category": p.category,
        }
        for p in prompts
    ]
    if rows:  # an executemany with no parameters is an error, not a no-op
        await session.execute(insert(Prompt), rows)
    return row


async def list_datasets(
    session: AsyncSession, *, after: int | None, limit: int
) -> list[DatasetRow]:
    prompts = select(func.count()).where(Prompt.dataset_id == Dataset.id).scalar_subquery()
    query = select(Dataset.id, Dataset.name, Dataset.source, Dataset.created_at, prompts)
    if after is not None:
        query = query.where(Dataset.id > after)
    found = await session.execute(query.order_by(Dataset.id).limit(limit))
    return [DatasetRow(*row) for row in found.all()]


async def category_counts(session: AsyncSession, dataset_id: int) -> list[tuple[str | None, int]]:
    """Prompts per category, most frequent first; None counts the uncategorised."""
    found = await session.execute(
        select(Prompt.category, func.count())
        .where(Prompt.dataset_id == dataset_id)
        .group_by(Prompt.category)
        .order_by(func.count().desc(), Prompt.category)
    )
    return [(category, count) for category, count in found.all()]


# --- responses ------------------------------------------------------------------------------


async def list_responses(
    session: AsyncSession,
    dataset_id: int,
    *,
    model: str | None = None,
    prompt: str | None = None,
    prompt_ids: PromptIds | None = None,
    after: int | None = None,
    limit: int = 100,
    response_ids: RowIds | None = None,
) -> list[ResponseRecord]:
    """Responses in id order; ``model`` is a model name, ``prompt`` a prompt's external id."""
    query = (
        select(
            Response.id,
            Prompt.external_id,
            Prompt.text,
            Model.name,
            Response.text,
            Response.generation_key,
            Response.source,
            Response.created_at,
        )
        .join(Response.prompt)
        .join(Response.model)
        .where(Prompt.dataset_id == dataset_id)
    )
    conditions: list[ColumnElement[bool]] = []
    if model is not None:
        conditions.append(Model.name == model)
    if prompt is not None:
        conditions.append(Prompt.external_id == prompt)
    if prompt_ids is not None:
        conditions.append(Prompt.id.in_(prompt_ids))
    if response_ids is not None:
        conditions.append(Response.id.in_(response_ids))
    if after is not None:
        conditions.append(Response.id > after)
    found = await session.execute(query.where(*conditions).order_by(Response.id).limit(limit))
    return [ResponseRecord(*row) for row in found.all()]


async def iter_responses(
    session: AsyncSession, dataset_id: int, **filters: Any
) -> AsyncIterator[ResponseRecord]:
    """Every response matching ``filters`` (those of :func:`list_responses`), fetched a batch
    at a time so memory stays flat."""
    async for record in _in_batches(
        lambda after: list_responses(
            session, dataset_id, after=after, limit=EXPORT_BATCH, **filters
        )
    ):
        yield record


# --- rankings -------------------------------------------------------------------------------


async def list_rankings(
    session: AsyncSession,
    dataset_id: int,
    *,
    annotator: str | None = None,
    prompt: str | None = None,
    model: str | None = None,
    prompt_ids: PromptIds | None = None,
    after: int | None = None,
    limit: int = 100,
    ranking_ids: RowIds | None = None,
) -> list[RankingRecord]:
    """Rankings in id order; ``model`` keeps those of prompts that model has a response to."""
    query = (
        select(
            Ranking.id,
            Annotator.name,
            Annotator.kind,
            Prompt.external_id,
            Ranking.ranks,
            Ranking.raw_value,
            Ranking.normalisations,
            Ranking.source,
            Ranking.presentation_key,
            Ranking.created_at,
        )
        .join(Ranking.prompt)
        .join(Ranking.annotator)
        .where(Prompt.dataset_id == dataset_id)
    )
    conditions: list[ColumnElement[bool]] = []
    if annotator is not None:
        conditions.append(Annotator.name == annotator)
    if prompt is not None:
        conditions.append(Prompt.external_id == prompt)
    if model is not None:
        answered = select(Response.prompt_id).join(Response.model).where(Model.name == model)
        conditions.append(Ranking.prompt_id.in_(answered))
    if prompt_ids is not None:
        conditions.append(Prompt.id.in_(prompt_ids))
    if ranking_ids is not None:
        conditions.append(Ranking.id.in_(ranking_ids))
    if after is not None:
        conditions.append(Ranking.id > after)
    found = await session.execute(query.where(*conditions).order_by(Ranking.id).limit(limit))
    return [_ranking_record(row) for row in found.all()]


def _ranking_record(row: Any) -> RankingRecord:
    values = list(row)
    values[2] = AnnotatorKind(values[2]).value
    return RankingRecord(*values)


async def iter_rankings(
    session: AsyncSession, dataset_id: int, **filters: Any
) -> AsyncIterator[RankingRecord]:
    """Every ranking matching ``filters`` (those of :func:`list_rankings`), fetched a batch at
    a time so memory stays flat."""
    async for record in _in_batches(
        lambda after: list_rankings(session, dataset_id, after=after, limit=EXPORT_BATCH, **filters)
    ):
        yield record


async def _in_batches(
    fetch: Callable[[int | None], Awaitable[Sequence[_Row]]],
) -> AsyncIterator[_Row]:
    """Keyset pages of ``EXPORT_BATCH`` rows until a short page says the end is reached."""
    after: int | None = None
    while True:
        batch = await fetch(after)
        for record in batch:
            yield record
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].id


# --- what a rankings import looks up and writes ----------------------------------------------


async def prompt_keys(
    session: AsyncSession, dataset_id: int
) -> tuple[dict[str, int], dict[str, int]]:
    """The dataset's prompt ids by external id, and by normalised text."""
    found = await session.execute(
        select(Prompt.id, Prompt.external_id, Prompt.normalised_text).where(
            Prompt.dataset_id == dataset_id
        )
    )
    rows = found.all()
    return {r.external_id: r.id for r in rows}, {r.normalised_text: r.id for r in rows}


async def models_of(session: AsyncSession, dataset_id: int) -> list[tuple[int, str]]:
    """(id, name) of the models with responses in the dataset, in position order."""
    in_dataset = (
        select(Response.model_id).join(Response.prompt).where(Prompt.dataset_id == dataset_id)
    )
    found = await session.execute(
        select(Model.id, Model.name).where(Model.id.in_(in_dataset)).order_by(Model.position)
    )
    return [(model_id, name) for model_id, name in found.all()]


async def response_texts(
    session: AsyncSession, prompt_ids: Collection[int]
) -> dict[tuple[int, int], list[str]]:
    """The texts of each (prompt id, model id); several when generated more than once."""
    texts: dict[tuple[int, int], list[str]] = {}
    for chunk in _chunks(prompt_ids):
        found = await session.execute(
            select(Response.prompt_id, Response.model_id, Response.text).where(
                Response.prompt_id.in_(chunk)
            )
        )
        for prompt_id, model_id, text in found.all():
            texts.setdefault((prompt_id, model_id), []).append(text)
    return texts


async def annotators_named(
    session: AsyncSession, names: Collection[str]
) -> dict[str, tuple[int, AnnotatorKind]]:
    found = await session.execute(
        select(Annotator.name, Annotator.id, Annotator.kind).where(Annotator.name.in_(names))
    )
    return {name: (annotator_id, kind) for name, annotator_id, kind in found.all()}


async def insert_human_annotators(session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
    if not names:
        return {}
    rows = [
        {"name": n, "kind": AnnotatorKind.HUMAN, "details": {"what": "imported human rankings"}}
        for n in names
    ]
    await session.execute(insert(Annotator), rows)
    found = await session.execute(
        select(Annotator.name, Annotator.id).where(Annotator.name.in_(names))
    )
    return dict(found.all())


async def stored_rankings(
    session: AsyncSession, annotator_ids: Collection[int], prompt_ids: Collection[int]
) -> dict[tuple[int, int], StoredRanking]:
    """The rankings with the empty presentation key, by (annotator id, prompt id)."""
    stored: dict[tuple[int, int], StoredRanking] = {}
    for chunk in _chunks(prompt_ids):
        found = await session.execute(
            select(Ranking.annotator_id, Ranking.prompt_id, Ranking.id, Ranking.ranks).where(
                Ranking.annotator_id.in_(annotator_ids),
                Ranking.prompt_id.in_(chunk),
                Ranking.presentation_key == "",
            )
        )
        stored |= {(a, p): StoredRanking(i, list(r)) for a, p, i, r in found.all()}
    return stored


async def insert_rankings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(Ranking), rows)


async def replace_ranking(session: AsyncSession, ranking_id: int, values: dict[str, Any]) -> None:
    await session.execute(update(Ranking).where(Ranking.id == ranking_id).values(**values))


def _chunks(ids: Collection[int]) -> list[list[int]]:
    # asyncpg takes at most 32767 bind parameters per statement; an IN list is one per value.
    ordered = sorted(ids)
    return [ordered[i : i + IN_CHUNK] for i in range(0, len(ordered), IN_CHUNK)]
