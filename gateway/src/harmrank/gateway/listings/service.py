"""Pages and exports of a scope's responses and rankings: one implementation for every scope.

Only reads; pages are keyset pages behind the opaque cursors of
:mod:`harmrank.gateway.pagination`, exports stream every matching row in batches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.gateway.datasets.schemas import RankingItem, RankingPage, ResponseItem, ResponsePage
from harmrank.gateway.listings import repository as repo
from harmrank.gateway.listings import resolve
from harmrank.gateway.listings.scope import ResultScope
from harmrank.gateway.pagination import decode_cursor, keyset_page
from harmrank.gateway.study.notation import format_ranks

# The tags of this module's cursors (see harmrank.gateway.pagination): "r"esponses, ran"k"ings.
RESPONSES = "r"
RANKINGS = "k"
Record = TypeVar("Record")


async def response_page(
    session: AsyncSession,
    scope: ResultScope,
    *,
    model: str | None,
    prompt: str | None,
    limit: int,
    cursor: str | None,
) -> ResponsePage:
    rows = await repo.list_responses(
        session,
        scope.dataset_id,
        model=model,
        prompt=prompt,
        prompt_ids=scope.prompt_ids,
        response_ids=scope.response_ids,
        after=decode_cursor(RESPONSES, cursor),
        limit=limit + 1,
    )
    shown, next_cursor = keyset_page(RESPONSES, rows, limit)
    return ResponsePage(items=[response_item(r) for r in shown], next_cursor=next_cursor)


async def ranking_page(
    session: AsyncSession,
    scope: ResultScope,
    *,
    annotator: str | None,
    prompt: str | None,
    model: str | None,
    limit: int,
    cursor: str | None,
) -> RankingPage:
    rows = await repo.list_rankings(
        session,
        scope.dataset_id,
        annotator=annotator,
        prompt=prompt,
        model=model,
        prompt_ids=scope.prompt_ids,
        ranking_ids=scope.ranking_ids,
        after=decode_cursor(RANKINGS, cursor),
        limit=limit + 1,
    )
    shown, next_cursor = keyset_page(RANKINGS, rows, limit)
    return RankingPage(
        models=await resolve.scope_models(session, scope),
        items=[ranking_item(r) for r in shown],
        next_cursor=next_cursor,
    )


# Built from the record's fields rather than dataclasses.asdict, which deep-copies every
# value and cost more than the rest of a page of responses.


def response_item(record: repo.ResponseRecord) -> ResponseItem:
    return ResponseItem(
        id=record.id,
        prompt_id=record.prompt_id,
        prompt=record.prompt,
        model=record.model,
        text=record.text,
        generation_key=record.generation_key,
        source=record.source,
        created_at=record.created_at,
    )


def ranking_item(record: repo.RankingRecord) -> RankingItem:
    return RankingItem(
        id=record.id,
        annotator=record.annotator,
        annotator_kind=record.annotator_kind,
        prompt_id=record.prompt_id,
        ranking=format_ranks(tuple(record.ranks)),
        ranks=record.ranks,
        raw_value=record.raw_value,
        normalisations=record.normalisations,
        source=record.source,
        presentation_key=record.presentation_key,
        created_at=record.created_at,
    )


def response_rows(
    sessions: async_sessionmaker[AsyncSession], scope: ResultScope, **only: str | None
) -> AsyncIterator[dict[str, Any]]:
    """The scope's matching responses as JSON-ready rows; ``only``: the filters of the page."""

    def records(session: AsyncSession) -> AsyncIterator[repo.ResponseRecord]:
        restrict = {"prompt_ids": scope.prompt_ids, "response_ids": scope.response_ids}
        return repo.iter_responses(session, scope.dataset_id, **restrict, **only)

    return _stream(sessions, records, response_item)


def ranking_rows(
    sessions: async_sessionmaker[AsyncSession], scope: ResultScope, **only: str | None
) -> AsyncIterator[dict[str, Any]]:
    """The scope's matching rankings as JSON-ready rows; ``only``: the filters of the page."""

    def records(session: AsyncSession) -> AsyncIterator[repo.RankingRecord]:
        restrict = {"prompt_ids": scope.prompt_ids, "ranking_ids": scope.ranking_ids}
        return repo.iter_rankings(session, scope.dataset_id, **restrict, **only)

    return _stream(sessions, records, ranking_item)


async def _stream(
    sessions: async_sessionmaker[AsyncSession],
    records: Callable[[AsyncSession], AsyncIterator[Record]],
    item: Callable[[Record], BaseModel],
) -> AsyncIterator[dict[str, Any]]:
    # A session of the stream's own: the request's has ended once the stream starts.
    async with sessions() as session:
        async for record in records(session):
            yield item(record).model_dump(mode="json")
