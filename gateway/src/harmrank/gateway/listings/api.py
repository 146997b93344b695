"""The result listings' routers: a dataset's results, and a run's.

A dataset's are every response and ranking stored for its prompts. A run's are exactly its
rows: responses of its prompts by its models with its generation settings (generated or
reused), rankings by its judges of its presentations, and, when its report included humans,
those humans' rankings of its prompts.
"""

from __future__ import annotations

from fastapi import APIRouter

from harmrank.gateway.deps import Session
from harmrank.gateway.listings import resolve
from harmrank.gateway.listings.routes import add_result_routes
from harmrank.gateway.listings.scope import ResultScope
from harmrank.gateway.query import read_errors
from harmrank.gateway.runs.api import RunId

datasets_router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
runs_router = APIRouter(prefix="/v1/runs", tags=["runs"])

_DATASET_ERRORS = read_errors("No such dataset")
_RUN_ERRORS = read_errors("No such run")


async def _dataset_scope(name: str, session: Session) -> ResultScope:
    return await resolve.dataset_scope(session, name)


async def _run_scope(run_id: RunId, session: Session) -> ResultScope:
    return await resolve.run_scope(session, run_id)


add_result_routes(
    datasets_router,
    path="/{name}",
    scope_of=_dataset_scope,
    errors=_DATASET_ERRORS,
    whose="a dataset's",
)
add_result_routes(
    runs_router,
    path="/{run_id}",
    scope_of=_run_scope,
    errors=_RUN_ERRORS,
    whose="a run's",
    note=" A run's rows: its models' responses with its generation settings (generated or "
    "reused), its judges' rankings and, when its report included humans, theirs.",
    name="run_",
)
