"""Routes of datasets: upload, list and describe (their results' pages and exports are the
result listings', :mod:`harmrank.gateway.listings.api`)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from harmrank.common.errors import ErrorBody
from harmrank.gateway import cpu_pool
from harmrank.gateway.datasets import service
from harmrank.gateway.datasets.form import file_field, form_body, read_form
from harmrank.gateway.datasets.schemas import DatasetCreated, DatasetDetail, DatasetPage
from harmrank.gateway.datasets.upload import UploadLimits
from harmrank.gateway.deps import Session
from harmrank.gateway.pagination import Cursor, Limit
from harmrank.gateway.query import read_errors

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

_ERRORS = read_errors("No such dataset")
_UPLOAD_BODY = form_body(
    ["name", "file"],
    name={"type": "string", "description": "The new dataset's name."},
    file=file_field(
        "Prompts as CSV (header row; columns text, category, id) or JSONL (one object per line"
        " with the same fields)."
    ),
)


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
