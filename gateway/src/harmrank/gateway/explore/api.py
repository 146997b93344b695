"""The explorer: its page (static files under ``/explore/``) and the API it reads.

Reads only, so the gateway's read rules apply (open, or a read token when reads need one).
The page is served with the annotation page's strict Content-Security-Policy and puts every
text in with ``textContent``: prompts and responses are shown as text whatever they contain.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse

from harmrank.common.errors import ErrorBody, NotFound
from harmrank.gateway.annotation.api_page import SECURITY_HEADERS
from harmrank.gateway.deps import Session
from harmrank.gateway.explore import facts as f
from harmrank.gateway.explore import service
from harmrank.gateway.explore.export import export
from harmrank.gateway.explore.schemas import ExploreItem, ExplorePage
from harmrank.gateway.pagination import Cursor, Limit
from harmrank.gateway.query import Format, RawCsv
from harmrank.metrics.rankings import ListConvention

STATIC = {
    "index.html": "text/html; charset=utf-8",
    "explore.js": "text/javascript; charset=utf-8",
    "explore.css": "text/css; charset=utf-8",
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "No scope, or a name the scope does not have"},
    404: {"model": ErrorBody, "description": "No such dataset, run or prompt"},
}
Name = Annotated[str | None, Query(max_length=200)]


async def explore_filter(
    category: Name = None,
    model: Annotated[str | None, Query(max_length=200, description="A model name.")] = None,
    q: Annotated[str | None, Query(max_length=500, description="Text in the prompt.")] = None,
    a: Annotated[str | None, Query(max_length=200, description="An annotator column.")] = None,
    b: Annotated[str | None, Query(max_length=200, description="Another column.")] = None,
    agreement: Annotated[
        f.Agreement | None,
        Query(description="How `a` and `b` compare (on `model` alone when it is given)."),
    ] = None,
    rbo_below: Annotated[float, Query(gt=0, le=1, description="For `rbo_below`.")] = 0.5,
    p: Annotated[float, Query(gt=0, lt=1, description="RBO persistence.")] = 0.9,
    lists: Annotated[
        ListConvention,
        Query(description="RBO lists: `tied` (all models) or `harmful` (harmful ones only)."),
    ] = "tied",
    split: Annotated[f.Split | None, Query(description="Prompts the group split on.")] = None,
    position_effect: Annotated[
        bool, Query(description="A judge ranked it differently across orders.")
    ] = False,
    judge: Annotated[str | None, Query(max_length=200, description="For position_effect.")] = None,
    rank: Annotated[
        int | None, Query(ge=0, le=100, description="`a` gave `model` this rank (0 = N/A).")
    ] = None,
    beats: Annotated[
        str | None, Query(max_length=200, description="`a` ranked `model` less harmful.")
    ] = None,
    sort: f.Sort = "order",
) -> f.Filter:
    return f.Filter(
        category=category, model=model, q=q, a=a, b=b, agreement=agreement,
        rbo_below=rbo_below, p=p, lists=lists, split=split, position_effect=position_effect,
        judge=judge, rank=rank, beats=beats, sort=sort,
    )  # fmt: skip


Filter = Annotated[f.Filter, Depends(explore_filter)]
Dataset = Annotated[str | None, Query(max_length=200, description="A dataset name.")]
Run = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="A run id.")]

router = APIRouter(prefix="/v1/explore", tags=["explorer"])
page_router = APIRouter(prefix="/explore", include_in_schema=False)


@router.get("/prompts", responses=_ERRORS)
async def list_prompts(
    session: Session,
    flt: Filter,
    dataset: Dataset = None,
    run: Run = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> ExplorePage:
    """The prompts of a dataset or run that the filter keeps, a page of them, with counts."""
    scope = await service.scope_of(session, dataset, run)
    return await service.page(session, scope, flt, cursor, limit)


@router.get("/prompts/{prompt_id}", responses=_ERRORS)
async def get_prompt(
    prompt_id: Annotated[str, Path(max_length=128)],
    session: Session,
    dataset: Dataset = None,
    run: Run = None,
) -> ExploreItem:
    """One prompt in full: each model's response, every ranking of it and what went wrong."""
    scope = await service.scope_of(session, dataset, run)
    return await service.item(session, scope, prompt_id)


@router.get("/export", responses=_ERRORS)
async def export_prompts(
    session: Session,
    flt: Filter,
    format: Format,
    dataset: Dataset = None,
    run: Run = None,
    raw: RawCsv = False,
) -> StreamingResponse:
    """Every prompt the filter keeps, with each response and ranking, as CSV or JSONL."""
    scope = await service.scope_of(session, dataset, run)
    return await export(session, scope, flt, format, raw)


def _file(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no file {name!r}")
    body = resources.files("harmrank.gateway.explore").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers=SECURITY_HEADERS)


@page_router.get("/")
async def page() -> Response:
    return _file("index.html")


@page_router.get("/static/{name}")
async def static_file(name: Annotated[str, Path(max_length=100)]) -> Response:
    return _file(name)
