"""The annotation tables: made by migration 0003, named by convention, undone by its downgrade."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.gateway.test_schema import (
    ANNOTATION_TABLES,
    constraint_names,
    metadata_constraint_names,
)

from harmrank.gateway.db import migrate
from harmrank.gateway.db.engine import create_engine


async def test_the_annotation_tables_follow_the_naming_convention(
    migrated_engine: AsyncEngine,
) -> None:
    async with migrated_engine.connect() as connection:
        names = await connection.run_sync(constraint_names, ANNOTATION_TABLES)
    assert names == metadata_constraint_names(ANNOTATION_TABLES)
    assert {
        "uq_annotation_invitations_token_sha256",
        "uq_annotation_assignments_invitation_id_prompt_id",
        "ck_annotation_assignments_state",
        "ck_annotation_configs_k_positive",
        "fk_annotation_assignments_ranking_id_rankings",
    } <= names


async def test_downgrading_0003_leaves_the_job_schema(db_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, db_url)
    await asyncio.to_thread(migrate.downgrade, db_url, "0002")
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            tables, _ = await connection.run_sync(
                lambda c: (set(inspect(c).get_table_names()), set[str]())
            )
    finally:
        await engine.dispose()
    assert not tables & ANNOTATION_TABLES
    assert {"runs", "tasks", "rankings"} <= tables
    await asyncio.to_thread(migrate.upgrade, db_url)
