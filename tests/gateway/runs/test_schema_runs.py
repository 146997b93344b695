"""The job tables: made by migration 0002, named by the convention, undone by its downgrade."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.gateway.runs.helpers import Sessions, create, seed_dataset, spec
from tests.gateway.test_schema import JOB_TABLES, constraint_names, metadata_constraint_names

from harmrank.gateway.db import migrate
from harmrank.gateway.db.engine import create_engine


async def test_the_job_tables_follow_the_naming_convention(migrated_engine: AsyncEngine) -> None:
    async with migrated_engine.connect() as connection:
        names = await connection.run_sync(constraint_names, JOB_TABLES)
    assert names == metadata_constraint_names(JOB_TABLES)
    assert {
        "ix_tasks_run_id_stage_state",
        "uq_tasks_run_id_key",
        "ck_tasks_state",
        "pk_idempotency_keys",
    } <= names


async def test_downgrading_0002_leaves_the_result_schema(db_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, db_url)
    await asyncio.to_thread(migrate.downgrade, db_url, "0001")
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            tables, _ = await connection.run_sync(lambda c: (set(inspect(c).get_table_names()), 0))
    finally:
        await engine.dispose()
    assert not tables & JOB_TABLES
    assert "responses" in tables
    await asyncio.to_thread(migrate.upgrade, db_url)


async def test_a_task_state_outside_the_list_is_refused(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=1)
    await create(session_maker, spec())
    async with session_maker() as session:
        with pytest.raises(IntegrityError):
            await session.execute(text("UPDATE tasks SET state = 'lost'"))
