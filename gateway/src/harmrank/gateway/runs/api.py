"""HTTP routes of runs (thin: the work is in ``service.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response

from harmrank.common.errors import ErrorBody
from harmrank.gateway.db.run_models import Stage, TaskState
from harmrank.gateway.deps import Session as SessionDep
from harmrank.gateway.deps import Sessions as SessionsDep
from harmrank.gateway.pagination import Cursor, Limit
from harmrank.gateway.query import BAD_PARAMETER, Responses, read_errors
from harmrank.gateway.runs import service
from harmrank.gateway.runs.schemas import RunCreate, RunOut, RunPage, RunStatus, TaskPage

router = APIRouter(prefix="/v1/runs", tags=["runs"])

REPLAYED_HEADER = "Idempotent-Replayed"
# Ids are BIGINT: a larger number must be a 422, not an overflow in the driver (a 500).
RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The run's id.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="The same key never makes a second run; with another body it is a 409.",
    ),
]


_CREATE_ERRORS: Responses = {
    409: {"model": ErrorBody, "description": "The Idempotency-Key came before with another body"},
    422: {
        "model": ErrorBody,
        "description": "An invalid body, or unknown names: every unknown dataset, category, "
        "model or judge is named, with the known names",
    },
    503: {"model": ErrorBody, "description": "A generator or judge service cannot be asked"},
}
_RUN_ERRORS = read_errors("No such run")


@router.post("", status_code=201, response_model=RunOut, responses=_CREATE_ERRORS)
async def create_run(
    body: RunCreate,
    sessions: SessionsDep,
    request: Request,
    response: Response,
    key: IdempotencyKey = None,
) -> RunOut:
    """Plan a run: its prompts and one task per result it needs (existing results are reused).

    Checked before it is committed: an unknown dataset, category, model or judge is a 422
    naming every one of them with the known names; a generator or judge service that cannot
    be asked is a 503, and nothing of the run is kept."""
    services = getattr(request.app.state, "run_services", None)
    run, created = await service.create_run(sessions, body, key, services)
    if not created:
        response.headers[REPLAYED_HEADER] = "true"
    return run


@router.get("", response_model=RunPage, responses={422: BAD_PARAMETER})
async def list_runs(
    session: SessionDep,
    status: RunStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> RunPage:
    """Runs, newest first, optionally of one status."""
    return await service.list_runs(session, status_filter=status, limit=limit, cursor=cursor)


@router.get("/{run_id}", response_model=RunOut, responses=_RUN_ERRORS)
async def get_run(run_id: RunId, session: SessionDep) -> RunOut:
    """A run with its status and task counts per stage, derived from its tasks."""
    return await service.get_run(session, run_id)


@router.post("/{run_id}/cancel", response_model=RunOut, responses=_RUN_ERRORS)
async def cancel_run(run_id: RunId, session: SessionDep) -> RunOut:
    """Cancel queued tasks; running ones finish or stop at their next heartbeat."""
    return await service.cancel_run(session, run_id)


@router.post("/{run_id}/resume", response_model=RunOut, responses=_RUN_ERRORS)
async def resume_run(run_id: RunId, session: SessionDep) -> RunOut:
    """Queue the cancelled and failed tasks again, with their attempts reset."""
    return await service.resume_run(session, run_id)


@router.get("/{run_id}/report", responses=read_errors("No such run, or no report yet"))
async def get_report(run_id: RunId, session: SessionDep) -> dict[str, Any]:
    """The run's report: every figure of its judges and, when the run judged the dataset's
    imported responses, of the humans who ranked them, aggregated into one human reference
    (`humans (aggregate)`, made as `metrics.human_reference` of the run says) that each judge
    is compared with, overall and split by how much the humans agreed on the item."""
    return await service.get_report(session, run_id)


@router.get("/{run_id}/tasks", response_model=TaskPage, responses=_RUN_ERRORS)
async def list_tasks(
    run_id: RunId,
    session: SessionDep,
    stage: Stage | None = None,
    state: TaskState | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> TaskPage:
    """The run's tasks in planning order, optionally of one stage and state."""
    return await service.list_tasks(
        session, run_id, stage=stage, state=state, limit=limit, cursor=cursor
    )
