"""The routes of the result listings, mounted once per kind of scope: for each kind of row
(:data:`~harmrank.gateway.listings.service.RESPONSES`, ``RANKINGS``), a page route and an export
route, made by one builder, for a dataset and for a run.

The scope comes from a dependency that names the path's own parameter (a dataset's name, a
run's id) and is resolved before an export starts streaming, so an unknown one is a 404, not a
cut stream; the stream then reads in a session of its own, open exactly as long as the stream.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, and the
# dependencies are locals of the builder, which a postponed annotation could not name.
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from harmrank.gateway.deps import Session, Sessions
from harmrank.gateway.export import export_response
from harmrank.gateway.listings import service
from harmrank.gateway.listings.scope import ResultScope
from harmrank.gateway.pagination import Cursor, Limit
from harmrank.gateway.query import (
    AnnotatorFilter,
    Format,
    ModelFilter,
    PromptFilter,
    RawCsv,
    Responses,
    export_answers,
)

AnsweredBy = Annotated[str | None, Query(description="Only prompts this model has a response to.")]


@dataclass
class ResponseFilters:
    """The query filters of responses, a page's and an export's."""

    model: ModelFilter = None
    prompt: PromptFilter = None


@dataclass
class RankingFilters:
    """The query filters of rankings, a page's and an export's."""

    annotator: AnnotatorFilter = None
    prompt: PromptFilter = None
    model: AnsweredBy = None


def awaited(cls: type[Any]) -> Callable[..., Awaitable[Any]]:
    """``cls`` as a dependency FastAPI awaits on the event loop, with the same parameters:
    FastAPI calls a class (as any plain callable) in its thread pool, a thread hop per request."""

    async def build(**values: Any) -> Any:
        return cls(**values)

    build.__signature__ = inspect.signature(cls)  # type: ignore[attr-defined]
    return build


@dataclass(frozen=True)
class _Kind:
    """A kind of row as its routes show it: its listing, its filters and how they are worded
    (``{whose}``: "a run's", ``{who}``: "a run")."""

    listing: service.Listing
    filters: type[Any]
    page_says: str
    export_says: str


_KINDS = (
    _Kind(
        service.RESPONSES,
        ResponseFilters,
        "Page through {whose} responses, optionally of one model or prompt.",
        "Download every matching response of {who} as CSV or JSONL.",
    ),
    _Kind(
        service.RANKINGS,
        RankingFilters,
        "Page through {whose} rankings, optionally of one annotator, prompt or model; ranks are "
        "in the order of `models`.",
        "Download every matching ranking of {who} (notation, ranks, raw value, source) as CSV "
        "or JSONL.",
    ),
)


def add_result_routes(
    router: APIRouter,
    *,
    path: str,
    scope_of: Callable[..., Awaitable[ResultScope]],
    errors: Responses,
    whose: str,
    note: str = "",
    name: str = "",
) -> None:
    """Mount a page and an export route of each kind of row under ``path`` of ``router``;
    ``scope_of`` is the dependency that resolves the scope, ``whose`` and ``note`` word the
    descriptions (``"a run's"``), ``name`` goes into the routes' names (and so their OpenAPI
    operation ids)."""
    words = {"whose": whose, "who": whose.removesuffix("'s")}
    for kind in _KINDS:
        _add_routes(
            router, kind, scope_of, path=path, name=name, words=words, note=note, errors=errors
        )


def _add_routes(
    router: APIRouter,
    kind: _Kind,
    scope_of: Callable[..., Awaitable[ResultScope]],
    *,
    path: str,
    name: str,
    words: dict[str, str],
    note: str,
    errors: Responses,
) -> None:
    listing = kind.listing
    at = f"{path}/{listing.name}"
    Scope = Annotated[ResultScope, Depends(scope_of)]
    Filters = Annotated[Any, Depends(awaited(kind.filters))]

    @router.get(
        at,
        name=f"list_{name}{listing.name}",
        description=kind.page_says.format(**words) + note,
        response_model=listing.page,
        responses=errors,
    )
    async def page(
        session: Session, scope: Scope, filters: Filters, limit: Limit = 100, cursor: Cursor = None
    ) -> Any:
        only = asdict(filters)
        return await service.page(session, scope, listing, only, limit=limit, cursor=cursor)

    @router.get(
        f"{at}/export",
        name=f"export_{name}{listing.name}",
        description=kind.export_says.format(**words) + note,
        response_class=StreamingResponse,
        responses=export_answers(errors),
    )
    async def export(
        sessions: Sessions, scope: Scope, format: Format, filters: Filters, raw: RawCsv = False
    ) -> StreamingResponse:
        rows = service.export_rows(sessions, scope, listing, asdict(filters))
        stem = f"{scope.file_stem}-{listing.name}"
        return export_response(format, listing.columns, rows, stem, raw)
