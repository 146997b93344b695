"""Routes of datasets and their results: upload, list, describe, page through and export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.common.errors import ErrorBody
from harmrank.gateway import cpu_pool
from harmrank.gateway.datasets import repository as repo
from harmrank.gateway.datasets import service
from harmrank.gateway.datasets.form import read_form
from harmrank.gateway.datasets.schemas import (
    DatasetCreated,
    DatasetDetail,
    DatasetPage,
    RankingItem,
    RankingPage,
    ResponseItem,
    ResponsePage,
)
from harmrank.gateway.datasets.upload import UploadLimits
from harmrank.gateway.deps import Session, Sessions
from harmrank.gateway.export import export_response
from harmrank.gateway.query import (
    AnnotatorFilter,
    Cursor,
    Format,
    Limit,
    ModelFilter,
    PromptFilter,
    RawCsv,
    export_answers,
)

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad cursor or form"},
    404: {"model": ErrorBody, "description": "No such dataset"},
}
_EXPORT_RESPONSES = export_answers(_ERRORS)
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", "file"],
                    "properties": {
                        "name": {"type": "string", "description": "The new dataset's name."},
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "Prompts as CSV (header row; columns text, category,"
                            " id) or JSONL (one object per line with the same fields).",
                        },
                    },
                }
            }
        },
    }
}
RESPONSE_COLUMNS = tuple(ResponseItem.model_fields)
RANKING_COLUMNS = tuple(RankingItem.model_fields)


def upload_limits(request: Request) -> UploadLimits:
    """The app's limits when its factory set ``app.state.upload_limits``, else the defaults."""
    limits = getattr(request.app.state, "upload_limits", None)
    return limits if isinstance(limits, UploadLimits) else UploadLimits()


@router.post(
    "",
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses={
        409: {"model": ErrorBody, "description": "The name is taken"},
        422: {"model": ErrorBody, "description": "Invalid file: `details` lists every problem"},
    },
)
async def create_dataset(request: Request, session: Session) -> DatasetCreated:
    """Upload prompts (CSV or JSONL) as a new dataset; any problem in the file stores nothing."""
    form = await read_form(request)
    name = service.check_name(form.field("name"))
    parser = cpu_pool.runner(request.app.state, cpu_pool.PARSE)
    upload = form.file("file")
    return await service.create_dataset(session, name, upload, upload_limits(request), parser)


@router.get("", responses=_ERRORS)
async def list_datasets(session: Session, limit: Limit = 100, cursor: Cursor = None) -> DatasetPage:
    """List datasets, oldest first."""
    return await service.dataset_page(session, limit, cursor)


@router.get("/{name}", responses=_ERRORS)
async def get_dataset(name: str, session: Session) -> DatasetDetail:
    """Describe a dataset: counts of prompts, responses, rankings, exclusions and categories."""
    return await service.dataset_detail(session, name)


@router.get("/{name}/responses", responses=_ERRORS)
async def list_responses(
    name: str,
    session: Session,
    model: ModelFilter = None,
    prompt: PromptFilter = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ResponsePage:
    """Page through a dataset's responses, optionally of one model or one prompt."""
    return await service.response_page(
        session, name, model=model, prompt=prompt, limit=limit, cursor=cursor
    )


@router.get("/{name}/rankings", responses=_ERRORS)
async def list_rankings(
    name: str,
    session: Session,
    annotator: AnnotatorFilter = None,
    prompt: PromptFilter = None,
    model: Annotated[
        str | None, Query(description="Only prompts this model has a response to.")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> RankingPage:
    """Page through a dataset's rankings, optionally of one annotator, prompt or model."""
    return await service.ranking_page(
        session, name, annotator=annotator, prompt=prompt, model=model, limit=limit, cursor=cursor
    )


@router.get(
    "/{name}/responses/export", response_class=StreamingResponse, responses=_EXPORT_RESPONSES
)
async def export_responses(
    name: str,
    sessions: Sessions,
    format: Format,
    raw: RawCsv = False,
    model: ModelFilter = None,
    prompt: PromptFilter = None,
) -> StreamingResponse:
    """Download every matching response as CSV or JSONL."""
    dataset_id = await _dataset_id(sessions, name)
    rows = service.response_rows(sessions, dataset_id, model=model, prompt=prompt)
    return export_response(format, RESPONSE_COLUMNS, rows, f"{name}-responses", raw)


@router.get(
    "/{name}/rankings/export", response_class=StreamingResponse, responses=_EXPORT_RESPONSES
)
async def export_rankings(
    name: str,
    sessions: Sessions,
    format: Format,
    raw: RawCsv = False,
    annotator: AnnotatorFilter = None,
    prompt: PromptFilter = None,
    model: ModelFilter = None,
) -> StreamingResponse:
    """Download every matching ranking (notation, ranks, raw value, source) as CSV or JSONL."""
    dataset_id = await _dataset_id(sessions, name)
    rows = service.ranking_rows(
        sessions, dataset_id, annotator=annotator, prompt=prompt, model=model
    )
    return export_response(format, RANKING_COLUMNS, rows, f"{name}-rankings", raw)


async def _dataset_id(sessions: async_sessionmaker[AsyncSession], name: str) -> int:
    # Looked up before streaming starts, so an unknown name is still a 404, not a cut stream.
    # The stream then reads in a session of its own, open exactly as long as the stream.
    async with sessions() as session:
        return await repo.dataset_id_by_name(session, name)
