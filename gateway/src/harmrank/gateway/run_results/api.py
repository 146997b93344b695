"""Routes of a run's results: its responses and rankings, paged and exported.

Exactly the run's rows: responses of its prompts by its models with its generation settings
(generated or reused), rankings by its judges of its presentations, and, when its report
included humans, those humans' rankings of its prompts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from harmrank.common.errors import ErrorBody
from harmrank.gateway.datasets.api import RANKING_COLUMNS, RESPONSE_COLUMNS
from harmrank.gateway.datasets.schemas import RankingPage, ResponsePage
from harmrank.gateway.datasets.service import ranking_rows, response_rows
from harmrank.gateway.deps import Session, Sessions
from harmrank.gateway.export import export_response
from harmrank.gateway.pagination import Cursor, Limit
from harmrank.gateway.query import (
    AnnotatorFilter,
    Format,
    ModelFilter,
    PromptFilter,
    RawCsv,
    export_answers,
)
from harmrank.gateway.run_results import service
from harmrank.gateway.runs.api import RunId

router = APIRouter(prefix="/v1/runs", tags=["runs"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such run"},
    422: {"model": ErrorBody, "description": "A bad parameter, or a cursor no page gave out"},
}
_EXPORT_RESPONSES = export_answers(_ERRORS)


@router.get("/{run_id}/responses", responses=_ERRORS)
async def list_run_responses(
    run_id: RunId,
    session: Session,
    model: ModelFilter = None,
    prompt: PromptFilter = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ResponsePage:
    """Page through the responses of a run (generated or reused), optionally of one model or
    prompt."""
    return await service.response_page(
        session, run_id, model=model, prompt=prompt, limit=limit, cursor=cursor
    )


@router.get("/{run_id}/rankings", responses=_ERRORS)
async def list_run_rankings(
    run_id: RunId,
    session: Session,
    annotator: AnnotatorFilter = None,
    model: Annotated[
        str | None, Query(description="Only prompts this model has a response to.")
    ] = None,
    prompt: PromptFilter = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> RankingPage:
    """Page through the rankings of a run: its judges' and, when its report included humans,
    theirs; ranks are in the order of `models`."""
    return await service.ranking_page(
        session,
        run_id,
        annotator=annotator,
        model=model,
        prompt=prompt,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/{run_id}/responses/export", response_class=StreamingResponse, responses=_EXPORT_RESPONSES
)
async def export_run_responses(
    run_id: RunId,
    sessions: Sessions,
    format: Format,
    raw: RawCsv = False,
    model: ModelFilter = None,
    prompt: PromptFilter = None,
) -> StreamingResponse:
    """Download every matching response of the run as CSV or JSONL."""
    # Resolved before streaming starts, so an unknown run is a 404, not a cut stream.
    async with sessions() as session:
        scope = await service.run_scope(session, run_id)
    rows = response_rows(
        sessions,
        scope.dataset_id,
        model=model,
        prompt=prompt,
        prompt_ids=scope.prompt_ids,
        response_ids=scope.response_ids,
    )
    return export_response(format, RESPONSE_COLUMNS, rows, f"run-{run_id}-responses", raw)


@router.get(
    "/{run_id}/rankings/export", response_class=StreamingResponse, responses=_EXPORT_RESPONSES
)
async def export_run_rankings(
    run_id: RunId,
    sessions: Sessions,
    format: Format,
    raw: RawCsv = False,
    annotator: AnnotatorFilter = None,
    model: ModelFilter = None,
    prompt: PromptFilter = None,
) -> StreamingResponse:
    """Download every matching ranking of the run as CSV or JSONL."""
    async with sessions() as session:
        scope = await service.run_scope(session, run_id)
    rows = ranking_rows(
        sessions,
        scope.dataset_id,
        annotator=annotator,
        prompt=prompt,
        model=model,
        prompt_ids=scope.prompt_ids,
        ranking_ids=scope.ranking_ids,
    )
    return export_response(format, RANKING_COLUMNS, rows, f"run-{run_id}-rankings", raw)
