"""Alembic environment: migrate over the connection `harmrank.gateway.db.migrate` hands in.

Run through `harmrank.gateway.db.migrate`, not the `alembic` command line: the configuration is
built in code, so there is no alembic.ini.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from harmrank.gateway.db import (
    annotation_models,  # noqa: F401
    models,  # noqa: F401  (registers the tables on the metadata)
    run_models,  # noqa: F401
)
from harmrank.gateway.db.base import Base
from harmrank.gateway.db.engine import create_engine, normalise_url

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (`alembic upgrade --sql`)."""
    context.configure(
        url=normalise_url(config.attributes["url"]),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_with_new_engine() -> None:
    engine = create_engine(config.attributes["url"], poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
    else:
        asyncio.run(run_migrations_with_new_engine())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
