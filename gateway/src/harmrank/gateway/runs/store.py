"""The result rows a run reads and writes: models, judges, responses, rankings, reports.

Every write is an insert-if-absent on the row's natural key (``ON CONFLICT DO NOTHING``, which
PostgreSQL and SQLite both speak), so a retried or re-claimed task, or two runs racing for the
same result, never store it twice and never fail on the duplicate. (A run's report is the
exception: its score task replaces an older one, through ``work.store_made``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import Conflict
from harmrank.gateway.db.base import Base
from harmrank.gateway.db.models import (
    Annotator,
    AnnotatorKind,
    Dataset,
    Model,
    Prompt,
    Ranking,
    Response,
)
from harmrank.gateway.db.run_models import Run, RunPrompt, RunReport

ResponseKey = tuple[int, int, str]
"""(prompt id, model id, generation key)"""
RankingKey = tuple[int, int, str]
"""(annotator id, prompt id, presentation key)"""


async def insert_if_absent(
    session: AsyncSession, table: type[Base], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert the rows; a row whose unique key is taken is skipped, not an error."""
    if not rows:
        return
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table).on_conflict_do_nothing()
    await session.execute(statement, list(rows))


async def ensure_models(session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
    """Ids of the models by name; a model never seen before goes after the known ones."""
    known = await _ids(session, Model, names)
    missing = [n for n in names if n not in known]
    if missing:
        top = await session.scalar(select(func.max(Model.position)))
        start = -1 if top is None else top
        rows = [
            {"name": n, "display_name": n, "position": start + 1 + i} for i, n in enumerate(missing)
        ]
        await insert_if_absent(session, Model, rows)
        known = await _ids(session, Model, names)
    return _all_found(known, names, "model")


async def ensure_judges(session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
    """Annotator ids of the judges by name, registering new ones as judges."""
    found = await session.execute(
        select(Annotator.name, Annotator.kind).where(Annotator.name.in_(names))
    )
    for name, kind in found:
        if kind != AnnotatorKind.JUDGE:
            raise Conflict(f"annotator {name!r} exists as a {kind} annotator, not a judge")
    rows = [
        {"name": n, "kind": AnnotatorKind.JUDGE, "details": {"judge_service": n}} for n in names
    ]
    await insert_if_absent(session, Annotator, rows)
    return _all_found(await _ids(session, Annotator, names), names, "judge")


async def _ids(
    session: AsyncSession, table: type[Model] | type[Annotator], names: Sequence[str]
) -> dict[str, int]:
    found = await session.execute(select(table.name, table.id).where(table.name.in_(names)))
    return dict(found.all())


def _all_found(ids: dict[str, int], names: Sequence[str], what: str) -> dict[str, int]:
    # Only when a concurrent request took the position a new model was given: a retry succeeds.
    missing = [n for n in names if n not in ids]
    if missing:
        raise Conflict(f"could not register {what} {', '.join(missing)} (concurrent change); retry")
    return ids


async def model_positions(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
    found = await session.execute(select(Model.id, Model.position).where(Model.id.in_(ids)))
    return dict(found.all())


async def existing_responses(session: AsyncSession, run_id: int) -> set[ResponseKey]:
    """The natural keys of the responses that exist for the run's prompts."""
    found = await session.execute(
        select(Response.prompt_id, Response.model_id, Response.generation_key).join(
            RunPrompt, (RunPrompt.prompt_id == Response.prompt_id) & (RunPrompt.run_id == run_id)
        )
    )
    return set(found.all())


async def existing_rankings(session: AsyncSession, run_id: int) -> set[RankingKey]:
    """The natural keys of the rankings that exist for the run's prompts."""
    found = await session.execute(
        select(Ranking.annotator_id, Ranking.prompt_id, Ranking.presentation_key).join(
            RunPrompt, (RunPrompt.prompt_id == Ranking.prompt_id) & (RunPrompt.run_id == run_id)
        )
    )
    return set(found.all())


async def existing_among(
    session: AsyncSession,
    table: type[Response] | type[Ranking],
    keys: Sequence[ResponseKey] | Sequence[RankingKey],
) -> set[tuple[int, int, str]]:
    """Which of the natural keys have a row already: one query for any number of keys (it
    reads the rows of their first two key columns and matches the rest here)."""
    if not keys:
        return set()
    first, second, third = _natural_key(table)
    found = await session.execute(
        select(first, second, third).where(
            first.in_({k[0] for k in keys}), second.in_({k[1] for k in keys})
        )
    )
    wanted = set(keys)
    return {(a, b, c) for a, b, c in found if (a, b, c) in wanted}


def _natural_key(table: type[Response] | type[Ranking]) -> tuple[Any, Any, Any]:
    if table is Response:
        return Response.prompt_id, Response.model_id, Response.generation_key
    return Ranking.annotator_id, Ranking.prompt_id, Ranking.presentation_key


async def load_report(session: AsyncSession, run_id: int) -> dict[str, Any] | None:
    found: dict[str, Any] | None = await session.scalar(
        select(RunReport.report).where(RunReport.run_id == run_id)
    )
    return found


async def dataset_names(session: AsyncSession) -> list[str]:
    """Every dataset's name, sorted: what a run may name."""
    return list(await session.scalars(select(Dataset.name).order_by(Dataset.name)))


async def dataset_categories(session: AsyncSession, dataset: str) -> list[str]:
    """The categories the dataset's prompts have, sorted (uncategorised prompts have none)."""
    query = (
        select(Prompt.category)
        .join(Dataset, Prompt.dataset_id == Dataset.id)
        .where(Dataset.name == dataset, Prompt.category.is_not(None))
        .distinct()
    )
    return sorted(c for c in await session.scalars(query) if c is not None)


async def run_trace_context(session: AsyncSession, run_id: int) -> str | None:
    """The traceparent of the request that created the run (None when tracing was off)."""
    found: str | None = await session.scalar(select(Run.trace_context).where(Run.id == run_id))
    return found
