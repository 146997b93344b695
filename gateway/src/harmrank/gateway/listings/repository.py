"""The queries of the result listings: a dataset's responses and rankings, a page or all.

Listing functions page by keyset on the row id (``after``), never by offset: a page costs the
same wherever it is, and rows inserted meanwhile neither repeat nor vanish. They take a dataset
id, optional filters, and optional restrictions to row ids (ids or a subquery of them), so a
run's scope (:mod:`harmrank.gateway.listings.scope`) reuses them for its own rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, CompoundSelect, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.models import Annotator, AnnotatorKind, Model, Prompt, Ranking, Response

PromptIds = Collection[int] | Select[int]
RowIds = Collection[int] | Select[int] | CompoundSelect[int]
"""Row ids, or a query of them, that a listing keeps to (a run's own results, say)."""


class _Keyed(Protocol):
    @property
    def id(self) -> int: ...


_Row = TypeVar("_Row", bound=_Keyed)
EXPORT_BATCH = 500


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
