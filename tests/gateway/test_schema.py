"""The result schema: made by the migrations, matching the ORM, enforcing the natural keys."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from harmrank.gateway.db import migrate
from harmrank.gateway.db.base import Base
from harmrank.gateway.db.engine import (
    DATABASE_URL_ENV,
    DatabaseURLError,
    create_engine,
    database_url_from_env,
)
from harmrank.gateway.db.models import (
    STUDY_GENERATION_KEY,
    Annotator,
    AnnotatorKind,
    Dataset,
    Exclusion,
    Model,
    Prompt,
    Ranking,
    Response,
)

RESULT_TABLES = {
    "datasets",
    "prompts",
    "models",
    "responses",
    "annotators",
    "rankings",
    "exclusions",
}
JOB_TABLES = {"runs", "run_prompts", "tasks", "idempotency_keys", "run_reports"}
ANNOTATION_TABLES = {
    "annotation_configs",
    "annotation_invitations",
    "annotation_sessions",
    "annotation_assignments",
    "annotation_flags",
    "annotation_draws",
}
ALL_TABLES = RESULT_TABLES | JOB_TABLES | ANNOTATION_TABLES


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def seed(session: AsyncSession) -> tuple[Dataset, Prompt, Model, Annotator]:
    dataset = Dataset(name="llm-harm", source="paper-data/llm-harm-psunlpgroup@2102899")
    prompt = Prompt(dataset=dataset, external_id="p1", text="What?", normalised_text="what?")
    model = Model(name="mistral-7b", display_name="Mistral-7B", position=0)
    annotator = Annotator(name="group_3", kind=AnnotatorKind.HUMAN)
    session.add_all([dataset, prompt, model, annotator])
    await session.flush()
    return dataset, prompt, model, annotator


def response(prompt: Prompt, model: Model, key: str = STUDY_GENERATION_KEY) -> Response:
    return Response(
        prompt=prompt, model=model, text="No.", generation_key=key, source="group_3.csv:2"
    )


def ranking(prompt: Prompt, annotator: Annotator, presentation_key: str = "") -> Ranking:
    return Ranking(
        prompt=prompt,
        annotator=annotator,
        ranks=[2, 1, 0],
        raw_value='"3,2,N/A"',
        normalisations=["restart_after_na"],
        source="group_3.csv:2",
        presentation_key=presentation_key,
    )


async def count(session: AsyncSession, model: type[Base]) -> int:
    return (await session.scalar(select(func.count()).select_from(model))) or 0


# Migrations


async def test_migrations_upgrade_and_downgrade_cleanly(db_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, db_url)
    assert await asyncio.to_thread(migrate.check_current, db_url)
    assert await table_names(db_url) == ALL_TABLES | {"alembic_version"}

    await asyncio.to_thread(migrate.downgrade, db_url, "base")
    assert not await asyncio.to_thread(migrate.check_current, db_url)
    assert await table_names(db_url) == {"alembic_version"}

    # Upgrading again proves the downgrade left nothing in the way.
    await asyncio.to_thread(migrate.upgrade, db_url)
    assert await asyncio.to_thread(migrate.check_current, db_url)


async def test_async_migrations_report_the_revision(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert not await migrate.check_current_async(engine)
        await migrate.upgrade_async(engine)
        assert await migrate.check_current_async(engine)
        await migrate.downgrade_async(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(migrate.current_revisions) == set()
    finally:
        await engine.dispose()


def sqlite_server_default(
    _context: MigrationContext, _inspected: Any, column: Column[Any], *_defaults: Any
) -> bool | None:
    # SQLite has no identity columns (its INTEGER PRIMARY KEY is one), so it reflects none.
    return False if column.identity is not None else None  # None: Alembic's own comparison


def schema_differences(connection: Connection) -> list[Any]:
    # Only on SQLite: Alembic's callable hook breaks on PostgreSQL's reflected identities.
    sqlite = connection.dialect.name == "sqlite"
    options = {
        "compare_type": True,
        "compare_server_default": sqlite_server_default if sqlite else True,
    }
    context = MigrationContext.configure(connection, opts=options)
    return list(compare_metadata(context, Base.metadata))


async def test_orm_metadata_matches_migrated_schema(migrated_engine: AsyncEngine) -> None:
    async with migrated_engine.connect() as connection:
        assert await connection.run_sync(schema_differences) == []


def constraint_names(connection: Connection, tables: Iterable[str] = ALL_TABLES) -> set[str]:
    """The names of the tables' keys, constraints and indexes, as the database reports them."""
    inspector = inspect(connection)
    names: set[str | None] = set()
    for table in tables:
        names.add(inspector.get_pk_constraint(table)["name"])
        names.update(c["name"] for c in inspector.get_unique_constraints(table))
        names.update(c["name"] for c in inspector.get_foreign_keys(table))
        names.update(c["name"] for c in inspector.get_check_constraints(table))
        names.update(c["name"] for c in inspector.get_indexes(table))
    return {name for name in names if name is not None}


def metadata_constraint_names(tables: Iterable[str] | None = None) -> set[str]:
    """The same names as the ORM metadata declares them (all tables by default)."""
    names: set[str] = set()
    chosen = Base.metadata.tables if tables is None else set(tables)
    for table in (t for name, t in Base.metadata.tables.items() if name in chosen):
        names.update(str(c.name) for c in table.constraints)
        names.update(str(i.name) for i in table.indexes)
    return names


async def test_constraints_are_named_by_the_convention(migrated_engine: AsyncEngine) -> None:
    async with migrated_engine.connect() as connection:
        reflected = await connection.run_sync(constraint_names)
    assert reflected == metadata_constraint_names()
    assert {
        "pk_responses",
        "uq_responses_prompt_id_model_id_generation_key",
        "uq_rankings_annotator_id_prompt_id_presentation_key",
        "fk_rankings_prompt_id_prompts",
        "ck_annotators_kind",
        "ix_rankings_prompt_id",
    } <= reflected


# Constraints and data


async def test_response_natural_key_is_unique(session: AsyncSession) -> None:
    _, prompt, model, _ = await seed(session)
    session.add(response(prompt, model, key="sampling-a"))
    session.add(response(prompt, model, key="sampling-b"))
    await session.flush()

    session.add(response(prompt, model, key="sampling-a"))
    with pytest.raises(IntegrityError):
        await session.flush()


async def test_ranking_natural_key_includes_the_presentation(session: AsyncSession) -> None:
    _, prompt, _, annotator = await seed(session)
    session.add(ranking(prompt, annotator))
    session.add(ranking(prompt, annotator, presentation_key="seed-7"))
    await session.flush()

    session.add(ranking(prompt, annotator))
    with pytest.raises(IntegrityError):
        await session.flush()


async def test_unknown_annotator_kind_is_rejected(session: AsyncSession) -> None:
    statement = text("INSERT INTO annotators (name, kind, details) VALUES ('x', 'robot', '{}')")
    with pytest.raises(IntegrityError):
        await session.execute(statement)


@pytest.mark.parametrize("how", ["orm", "sql"])
async def test_deleting_a_dataset_deletes_what_it_holds(
    session_maker: async_sessionmaker[AsyncSession], how: str
) -> None:
    async with session_maker() as session:
        dataset, prompt, model, annotator = await seed(session)
        session.add_all([response(prompt, model), ranking(prompt, annotator)])
        session.add(
            Exclusion(dataset=dataset, source_file="g.csv", line=7, reason="empty", raw_value="")
        )
        await session.commit()
        if how == "orm":
            await session.delete(dataset)
        else:
            await session.execute(text("DELETE FROM datasets"))
        await session.commit()

    async with session_maker() as session:
        for table in (Dataset, Prompt, Response, Ranking, Exclusion):
            assert await count(session, table) == 0, table.__tablename__
        # Models and annotators outlive a dataset.
        assert await count(session, Model) == await count(session, Annotator) == 1


async def test_json_round_trips(session_maker: async_sessionmaker[AsyncSession]) -> None:
    report = {"rows": 1020, "dropped": {"empty_response": 35}, "note": "ünï ✓", "x": [1, None, 2.5]}
    async with session_maker() as session:
        dataset, prompt, _, annotator = await seed(session)
        dataset.import_report = report
        annotator.details = {"provider": "openai", "temperature": 0.0}
        stored = ranking(prompt, annotator)
        stored.presentation = {"order": [2, 0, 1], "labels": ["A", "B", "C"]}
        session.add_all([stored, ranking(prompt, annotator, presentation_key="none")])
        await session.commit()

    async with session_maker() as session:
        assert await session.scalar(select(Dataset.import_report)) == report
        assert await session.scalar(select(Annotator.details)) == {
            "provider": "openai",
            "temperature": 0.0,
        }
        rows = (await session.scalars(select(Ranking).order_by(Ranking.id))).all()
        assert [(r.ranks, r.normalisations) for r in rows] == [
            ([2, 1, 0], ["restart_after_na"])
        ] * 2
        assert rows[0].presentation == {"order": [2, 0, 1], "labels": ["A", "B", "C"]}
        # None is SQL NULL, not JSON null.
        assert (
            await session.scalar(select(Ranking.id).where(Ranking.presentation.is_(None)))
            == rows[1].id
        )


async def test_timestamps_are_timezone_aware(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    async with session_maker() as session:
        dataset, _, _, _ = await seed(session)
        eastern = datetime(2025, 6, 19, 12, 0, tzinfo=timezone(timedelta(hours=-4)))
        dataset.created_at = eastern
        await session.execute(
            text("INSERT INTO datasets (name, source, import_report) VALUES ('raw', 'sql', '{}')")
        )
        await session.commit()

    async with session_maker() as session:
        stored = await session.scalar(select(Dataset.created_at).where(Dataset.name == "llm-harm"))
        assert stored == eastern
        assert stored.utcoffset() == timedelta(0)
        by_server = await session.scalar(select(Dataset.created_at).where(Dataset.name == "raw"))
        assert by_server is not None
        assert by_server.tzinfo is not None
        assert abs(datetime.now(UTC) - by_server) < timedelta(minutes=5)


async def test_naive_timestamps_are_refused(session: AsyncSession) -> None:
    dataset, _, _, _ = await seed(session)
    dataset.created_at = datetime(2025, 6, 19, 12, 0)
    with pytest.raises(StatementError, match="naive datetime"):
        await session.flush()


# Engine and URL


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "postgresql://u:p%40ss@db:5432/harmrank",
            "postgresql+asyncpg://u:p%40ss@db:5432/harmrank",
        ),
        ("postgres://u@db/harmrank", "postgresql+asyncpg://u@db/harmrank"),
        ("postgresql+asyncpg://u@db/harmrank", "postgresql+asyncpg://u@db/harmrank"),
        ("sqlite:///data/harmrank.db", "sqlite+aiosqlite:///data/harmrank.db"),
        ("sqlite+aiosqlite:////abs/h.db", "sqlite+aiosqlite:////abs/h.db"),
    ],
)
def test_database_url_from_env_picks_an_async_driver(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: str
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, raw)
    assert database_url_from_env(Path("unused.db")) == expected


def test_database_url_defaults_to_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    path = tmp_path / "harmrank.db"
    assert database_url_from_env(path) == f"sqlite+aiosqlite:///{path}"


def test_a_bad_database_url_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "not a url, but s3cret")
    with pytest.raises(DatabaseURLError) as raised:
        database_url_from_env(Path("unused.db"))
    assert "s3cret" not in str(raised.value)


async def test_sqlite_connections_enforce_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        await engine.dispose()
