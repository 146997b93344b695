"""The routes of the result listings, mounted once per kind of scope: the same four routes
(page and export the responses, page and export the rankings) for a dataset and for a run.

The scope comes from a dependency that names the path's own parameter (a dataset's name, a
run's id) and is resolved before an export starts streaming, so an unknown one is a 404, not a
cut stream; the stream then reads in a session of its own, open exactly as long as the stream.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, and the
# scope's dependency is a local of the factory, which a postponed annotation could not name.
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from harmrank.gateway.datasets.schemas import RankingItem, RankingPage, ResponseItem, ResponsePage
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

RESPONSE_COLUMNS = tuple(ResponseItem.model_fields)
RANKING_COLUMNS = tuple(RankingItem.model_fields)
AnsweredBy = Annotated[str | None, Query(description="Only prompts this model has a response to.")]


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
    """Mount the four routes under ``path`` of ``router``; ``scope_of`` is the dependency
    that resolves the scope, ``whose`` and ``note`` word the descriptions (``"a run's"``),
    ``name`` goes into the routes' names (and so their OpenAPI operation ids)."""
    scope_dependency = Depends(scope_of)
    who = whose.removesuffix("'s")
    streamed = export_answers(errors)

    def route(
        suffix: str, action: str, description: str, **more: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return router.get(
            f"{path}/{suffix}",
            name=f"{action}_{name}{suffix.partition('/')[0]}",
            description=description + note,
            **more,
        )

    @route(
        "responses",
        "list",
        f"Page through {whose} responses, optionally of one model or prompt.",
        responses=errors,
    )
    async def list_responses(
        session: Session,
        scope: Annotated[ResultScope, scope_dependency],
        model: ModelFilter = None,
        prompt: PromptFilter = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> ResponsePage:
        return await service.response_page(
            session, scope, model=model, prompt=prompt, limit=limit, cursor=cursor
        )

    @route(
        "rankings",
        "list",
        f"Page through {whose} rankings, optionally of one annotator, prompt or model; ranks "
        "are in the order of `models`.",
        responses=errors,
    )
    async def list_rankings(
        session: Session,
        scope: Annotated[ResultScope, scope_dependency],
        annotator: AnnotatorFilter = None,
        prompt: PromptFilter = None,
        model: AnsweredBy = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> RankingPage:
        return await service.ranking_page(
            session,
            scope,
            annotator=annotator,
            prompt=prompt,
            model=model,
            limit=limit,
            cursor=cursor,
        )

    @route(
        "responses/export",
        "export",
        f"Download every matching response of {who} as CSV or JSONL.",
        response_class=StreamingResponse,
        responses=streamed,
    )
    async def export_responses(
        sessions: Sessions,
        scope: Annotated[ResultScope, scope_dependency],
        format: Format,
        raw: RawCsv = False,
        model: ModelFilter = None,
        prompt: PromptFilter = None,
    ) -> StreamingResponse:
        rows = service.response_rows(sessions, scope, model=model, prompt=prompt)
        stem = f"{scope.file_stem}-responses"
        return export_response(format, RESPONSE_COLUMNS, rows, stem, raw)

    @route(
        "rankings/export",
        "export",
        f"Download every matching ranking of {who} (notation, ranks, raw "
        "value, source) as CSV or JSONL.",
        response_class=StreamingResponse,
        responses=streamed,
    )
    async def export_rankings(
        sessions: Sessions,
        scope: Annotated[ResultScope, scope_dependency],
        format: Format,
        raw: RawCsv = False,
        annotator: AnnotatorFilter = None,
        prompt: PromptFilter = None,
        model: ModelFilter = None,
    ) -> StreamingResponse:
        only = {"annotator": annotator, "prompt": prompt, "model": model}
        rows = service.ranking_rows(sessions, scope, **only)
        return export_response(format, RANKING_COLUMNS, rows, f"{scope.file_stem}-rankings", raw)
