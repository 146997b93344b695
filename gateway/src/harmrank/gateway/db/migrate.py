"""Run the Alembic migrations, the only way the schema is made, from code.

The Alembic configuration is built here rather than read from an `alembic.ini`, so migrations
work from an installed package. `upgrade`/`downgrade`/`check_current` are for synchronous
callers (CLI, scripts); inside a running event loop use the `*_async` variants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from harmrank.gateway.db.engine import create_engine

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic configuration for these migrations; `url` is used when no connection is given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Kept out of the ini options: configparser would interpolate a '%' in a password.
    config.attributes["url"] = url
    return config


def upgrade(url: str | URL, revision: str = "head") -> None:
    asyncio.run(_with_engine(url, lambda engine: upgrade_async(engine, revision)))


def downgrade(url: str | URL, revision: str = "base") -> None:
    asyncio.run(_with_engine(url, lambda engine: downgrade_async(engine, revision)))


def check_current(url: str | URL) -> bool:
    """Whether the database is at the newest revision."""
    return asyncio.run(_with_engine(url, check_current_async))


# Any constant shared by every process that migrates this database ("harmrank" in ASCII).
MIGRATION_LOCK_KEY = 0x6861726D72616E6B


async def upgrade_async(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Pods that start together (each runs `harmrank migrate` first) take turns: the
            # second finds the schema at head and does nothing. Released at commit.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await connection.run_sync(_upgrade, revision)


async def downgrade_async(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, revision)


async def check_current_async(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        current = await connection.run_sync(current_revisions)
    return current == head_revisions()


def current_revisions(connection: Connection) -> set[str]:
    """The revisions the database is at; empty when it has never been migrated."""
    return set(MigrationContext.configure(connection).get_current_heads())


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(_config_for(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(_config_for(connection), revision)


def _config_for(connection: Connection) -> Config:
    config = alembic_config()
    config.attributes["connection"] = connection
    return config


async def _with_engine(url: str | URL, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    # NullPool: a one-off engine whose connection must not outlive this call.
    engine = create_engine(url, poolclass=NullPool)
    try:
        return await action(engine)
    finally:
        await engine.dispose()
