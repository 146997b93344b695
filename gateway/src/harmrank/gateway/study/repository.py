"""The study domain's repository: every statement that writes a study import into the result
schema, in the caller's transaction (it flushes, never commits).

Rows go in as bulk inserts of plain dicts and their ids come back by natural key in one query per
table: row-by-row ORM adds would cost a round trip each. Which rows, and the checks before them,
are ``study.to_dataset``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db import (
    Annotator,
    AnnotatorKind,
    Dataset,
    Exclusion,
    Model,
    Prompt,
    Ranking,
    Response,
)

# --- the dataset ---------------------------------------------------------------------------


async def dataset_named(session: AsyncSession, name: str) -> Dataset | None:
    found: Dataset | None = await session.scalar(select(Dataset).where(Dataset.name == name))
    return found


async def insert_dataset(session: AsyncSession, **values: Any) -> int:
    """The new dataset's id (flushed)."""
    row = Dataset(**values)
    session.add(row)
    await session.flush()
    return row.id


# --- models and annotators: shared by every dataset, so matched by name --------------------


async def model_positions(session: AsyncSession) -> dict[str, int]:
    """Every stored model's position, by name."""
    return {r.name: r.position for r in await session.scalars(select(Model))}


async def annotator_kinds_by_name(session: AsyncSession) -> dict[str, AnnotatorKind]:
    """Every stored annotator's kind, by name."""
    found = await session.execute(select(Annotator.name, Annotator.kind))
    return dict(found.all())


async def insert_models(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert the models; every stored model's id by name."""
    return await _insert_and_fetch(session, Model, rows)


async def insert_annotators(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert the annotators; every stored annotator's id by name."""
    return await _insert_and_fetch(session, Annotator, rows)


async def _insert_and_fetch(
    session: AsyncSession, table: type[Model] | type[Annotator], rows: list[dict[str, Any]]
) -> dict[str, int]:
    if rows:
        await session.execute(insert(table), rows)
    found = await session.execute(select(table.name, table.id))
    return dict(found.all())


# --- the dataset's own rows ----------------------------------------------------------------


async def insert_prompts(
    session: AsyncSession, dataset_id: int, rows: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Insert the dataset's prompts; their ids by external id."""
    await _bulk(session, Prompt, rows)
    found = await session.execute(
        select(Prompt.external_id, Prompt.id).where(Prompt.dataset_id == dataset_id)
    )
    return dict(found.all())


async def insert_responses(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _bulk(session, Response, rows)


async def insert_rankings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _bulk(session, Ranking, rows)


async def insert_exclusions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _bulk(session, Exclusion, rows)


async def _bulk(
    session: AsyncSession,
    table: type[Prompt] | type[Response] | type[Ranking] | type[Exclusion],
    rows: Sequence[dict[str, Any]],
) -> None:
    # An executemany with an empty parameter list is an error, not a no-op.
    if rows:
        await session.execute(insert(table), rows)
