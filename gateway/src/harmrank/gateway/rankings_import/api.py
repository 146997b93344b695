"""The route that imports human rankings into a dataset."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from harmrank.common.errors import ErrorBody
from harmrank.gateway import cpu_pool
from harmrank.gateway.datasets.form import file_field, form_body, read_form
from harmrank.gateway.datasets.schemas import RankingsImported
from harmrank.gateway.deps import Session
from harmrank.gateway.rankings_import.service import import_rankings

router = APIRouter(prefix="/v1/datasets", tags=["rankings"])

_BODY = form_body(
    ["file"],
    file=file_field(
        "The study's CSV layout (Prompt, one response column per model, Ranking, optional"
        " Annotator) or JSONL objects with annotator, prompt_id or prompt, and ranks or ranking."
    ),
    annotator={"type": "string", "description": "Who ranked, for rows that do not say."},
)
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Not a multipart form with a file"},
    404: {"model": ErrorBody, "description": "No such dataset"},
    409: {"model": ErrorBody, "description": "Lines that would change stored rankings"},
    422: {"model": ErrorBody, "description": "Invalid file: `details` lists every problem"},
}


@router.post("/{name}/rankings", openapi_extra=_BODY, responses=_RESPONSES)
async def import_human_rankings(
    name: str,
    request: Request,
    session: Session,
    replace: Annotated[
        bool, Query(description="Overwrite stored rankings this file changes.")
    ] = False,
) -> RankingsImported:
    """Import human rankings (study CSV or JSONL) into a dataset; any problem stores nothing."""
    form = await read_form(request)
    parser = cpu_pool.runner(request.app.state, cpu_pool.PARSE)
    return await import_rankings(
        session, name, form.file("file"), parser, annotator=form.field("annotator"), replace=replace
    )
