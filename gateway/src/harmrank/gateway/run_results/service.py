"""Pages of a run's results, through the dataset listings restricted to the run's rows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import CompoundSelect, Select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.datasets import repository as repo
from harmrank.gateway.datasets.schemas import RankingPage, ResponsePage
from harmrank.gateway.datasets.service import ranking_item as ranking_item
from harmrank.gateway.datasets.service import response_item as response_item
from harmrank.gateway.pagination import decode_cursor, encode_cursor
from harmrank.gateway.run_results import repository as runs_repo
from harmrank.gateway.runs.schemas import RunCreate


@dataclass(frozen=True)
class RunScope:
    """What restricts the dataset listings to one run's rows."""

    run_id: int
    dataset_id: int
    prompt_ids: Select[int]
    response_ids: Select[int]
    ranking_ids: CompoundSelect[int]
    models: list[str]


async def run_scope(session: AsyncSession, run_id: int) -> RunScope:
    """The run's scope; an unknown run is a 404."""
    run = await runs_repo.run_row(session, run_id)
    spec = RunCreate.model_validate(run.spec)
    humans = await runs_repo.included_humans(session, run_id)
    return RunScope(
        run_id=run.id,
        dataset_id=run.dataset_id,
        prompt_ids=runs_repo.prompt_ids(run_id),
        response_ids=runs_repo.response_ids(run_id),
        ranking_ids=runs_repo.ranking_ids(run_id, humans),
        models=await runs_repo.model_names(session, [m.name for m in spec.models]),
    )


async def response_page(
    session: AsyncSession,
    run_id: int,
    *,
    model: str | None,
    prompt: str | None,
    limit: int,
    cursor: str | None,
) -> ResponsePage:
    scope = await run_scope(session, run_id)
    rows = await repo.list_responses(
        session,
        scope.dataset_id,
        model=model,
        prompt=prompt,
        prompt_ids=scope.prompt_ids,
        response_ids=scope.response_ids,
        after=decode_cursor("r", cursor),
        limit=limit + 1,
    )
    items = [response_item(r) for r in rows[:limit]]
    return ResponsePage(items=items, next_cursor=_next("r", [r.id for r in rows], limit))


async def ranking_page(
    session: AsyncSession,
    run_id: int,
    *,
    annotator: str | None,
    model: str | None,
    prompt: str | None,
    limit: int,
    cursor: str | None,
) -> RankingPage:
    scope = await run_scope(session, run_id)
    rows = await repo.list_rankings(
        session,
        scope.dataset_id,
        annotator=annotator,
        prompt=prompt,
        model=model,
        prompt_ids=scope.prompt_ids,
        ranking_ids=scope.ranking_ids,
        after=decode_cursor("k", cursor),
        limit=limit + 1,
    )
    items = [ranking_item(r) for r in rows[:limit]]
    return RankingPage(
        models=scope.models, items=items, next_cursor=_next("k", [r.id for r in rows], limit)
    )


def _next(kind: str, ids: list[int], limit: int) -> str | None:
    # The dataset listings' scheme: one row more than the page says there is a next page.
    return encode_cursor(kind, ids[limit - 1]) if len(ids) > limit else None
