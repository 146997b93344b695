"""Pages and exports of a scope's responses and rankings: one implementation for every scope
and every kind of row, a :class:`Listing` saying what differs between the kinds.

Only reads; pages are keyset pages behind the opaque cursors of
:mod:`harmrank.gateway.pagination`, exports stream every matching row in batches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.gateway.datasets.schemas import RankingItem, RankingPage, ResponseItem, ResponsePage
from harmrank.gateway.listings import repository as repo
from harmrank.gateway.listings import resolve
from harmrank.gateway.listings.scope import ResultScope
from harmrank.gateway.pagination import Page, fetch_page

Filters = Mapping[str, str | None]
"""A listing's filters by name, None where not given (see the listing functions of the
repository)."""


@dataclass(frozen=True)
class Listing:
    """One kind of row a scope lists, and what its pages and exports are made of."""

    name: str
    """The routes' path segment and the export file's suffix: ``responses``, ``rankings``."""
    tag: str
    """The tag of its cursors (see :mod:`harmrank.gateway.pagination`)."""
    fetch: Callable[..., Awaitable[Sequence[Any]]]
    """The repository's listing function."""
    row_ids: Callable[[ResultScope], repo.RowIds | None]
    """The scope's restriction of the rows (a run's), None for every row of the dataset."""
    item: type[BaseModel]
    page: type[Page[Any]]
    with_models: bool = False
    """Whether a page names the scope's models: the order its rows' rank lists follow."""

    @property
    def columns(self) -> tuple[str, ...]:
        """An export's columns: the item's fields."""
        return tuple(self.item.model_fields)


RESPONSES = Listing(
    name="responses",
    tag="r",
    fetch=repo.list_responses,
    row_ids=lambda scope: scope.response_ids,
    item=ResponseItem,
    page=ResponsePage,
)
RANKINGS = Listing(
    name="rankings",
    tag="k",
    fetch=repo.list_rankings,
    row_ids=lambda scope: scope.ranking_ids,
    item=RankingItem,
    page=RankingPage,
    with_models=True,
)


async def page(
    session: AsyncSession,
    scope: ResultScope,
    listing: Listing,
    filters: Filters,
    *,
    limit: int,
    cursor: str | None,
) -> Page[Any]:
    """One page of the scope's rows of ``listing`` that match ``filters``."""
    restricted = {**_restriction(scope, listing), **filters}
    shown, next_cursor = await fetch_page(
        listing.tag,
        cursor,
        limit,
        lambda after, n: listing.fetch(
            session, scope.dataset_id, **restricted, after=after, limit=n
        ),
    )
    more = {"models": await resolve.scope_models(session, scope)} if listing.with_models else {}
    return listing.page(items=shown, next_cursor=next_cursor, **more)


async def export_rows(
    sessions: async_sessionmaker[AsyncSession],
    scope: ResultScope,
    listing: Listing,
    filters: Filters,
) -> AsyncIterator[dict[str, Any]]:
    """Every row of the scope's ``listing`` that matches ``filters``, JSON-ready."""
    # A session of the stream's own: the request's has ended once the stream starts.
    async with sessions() as session:
        restricted = {**_restriction(scope, listing), **filters}
        async for item in repo.iter_all(listing.fetch, session, scope.dataset_id, **restricted):
            yield item.model_dump(mode="json")


def _restriction(scope: ResultScope, listing: Listing) -> dict[str, Any]:
    return {"prompt_ids": scope.prompt_ids, "row_ids": listing.row_ids(scope)}
