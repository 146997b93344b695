"""The annotation tables: made by migration 0003, named by convention, undone by its downgrade."""

from __future__ import annotations

import asyncio

from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from harmrank.gateway.db import migrate
from harmrank.gateway.db.base import Base
from harmrank.gateway.db.engine import create_engine

ANNOTATION_TABLES = {
    "annotation_configs",
    "annotation_invitations",
    "annotation_sessions",
    "annotation_assignments",
    "annotation_flags",
}


def schema(connection: Connection) -> tuple[set[str], set[str]]:
    inspector = inspect(connection)
    names: set[str | None] = set()
    for table in ANNOTATION_TABLES:
        names.add(inspector.get_pk_constraint(table)["name"])
        names.update(c["name"] for c in inspector.get_unique_constraints(table))
        names.update(c["name"] for c in inspector.get_foreign_keys(table))
        names.update(c["name"] for c in inspector.get_check_constraints(table))
        names.update(c["name"] for c in inspector.get_indexes(table))
    return set(inspector.get_table_names()), {n for n in names if n is not None}


def metadata_names() -> set[str]:
    names: set[str] = set()
    for name in ANNOTATION_TABLES:
        table = Base.metadata.tables[name]
        names.update(str(c.name) for c in table.constraints)
        names.update(str(i.name) for i in table.indexes)
    return names


async def test_the_annotation_tables_follow_the_naming_convention(
    migrated_engine: AsyncEngine,
) -> None:
    async with migrated_engine.connect() as connection:
        tables, names = await connection.run_sync(schema)
    assert tables >= ANNOTATION_TABLES
    assert names == metadata_names()
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
