"""The tests' throwaway databases: PostgreSQL ones with random names, and migrated templates.

Two costs here are paid per database test and neither is what a test checks, so both leave the
test's own time:
- running the Alembic migrations: they run once per session into a template (a PostgreSQL
  database, a SQLite file), and a test that wants a migrated database gets a copy of it; the
  test still runs the upgrade itself, which then finds the database at head;
- DROP DATABASE, which waits for a checkpoint (up to seconds on a busy machine): a test's
  database is dropped by background threads while the next tests run, and the session waits
  for every drop at its end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from harmrank.gateway.db.engine import create_engine, normalise_url, redact_url, sqlite_url
from harmrank.gateway.db.migrate import upgrade_async

POSTGRES_ADMIN_URL_ENV = "HARMRANK_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> URL:
    raw = os.environ.get(POSTGRES_ADMIN_URL_ENV, DEFAULT_POSTGRES_ADMIN_URL)
    return make_url(normalise_url(raw))


def _admin_engine() -> AsyncEngine:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    return create_engine(
        postgres_admin_url(),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": 5},
    )


def _random_name() -> str:
    return f"harmrank_test_{secrets.token_hex(6)}"


async def _create_database(name: str, template: str | None = None) -> None:
    admin = _admin_engine()
    clause = f' TEMPLATE "{template}"' if template else ""
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    except (OSError, DBAPIError) as exc:
        pytest.fail(
            f"PostgreSQL at {redact_url(admin.url)} is needed by the gateway tests and could not"
            f" create a database ({type(exc).__name__}: {exc}). Start it with `make postgres`, or"
            f" point {POSTGRES_ADMIN_URL_ENV} at a server where the user may CREATE DATABASE.",
            pytrace=False,
        )
    finally:
        await admin.dispose()


async def _drop_database(name: str) -> None:
    admin = _admin_engine()
    try:
        async with admin.connect() as connection:
            # FORCE: a connection a failed test leaked must not keep the database alive.
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def _url_of(name: str) -> str:
    return postgres_admin_url().set(database=name).render_as_string(hide_password=False)


class Drops:
    """Drops databases in threads of their own; ``finish`` waits for them all.

    Several at a time: the checkpointer serves concurrent requests with one checkpoint, so three
    drops together take about as long as one (measured: 2.4 s against 6.7 s one after another)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="drop-database")
        self._pending: list[Future[None]] = []

    def drop(self, name: str) -> None:
        self._pending.append(self._pool.submit(asyncio.run, _drop_database(name)))

    def finish(self) -> None:
        self._pool.shutdown(wait=True)
        for future in self._pending:
            future.result()  # a drop that failed is an error of the session


@asynccontextmanager
async def throwaway_postgres_database(
    template: str | None = None, drops: Drops | None = None
) -> AsyncIterator[str]:
    """A new database (a copy of ``template`` when given), dropped afterwards: by ``drops`` in
    the background when given, else before this returns."""
    name = _random_name()
    await _create_database(name, template)
    try:
        yield _url_of(name)
    finally:
        if drops is not None:
            drops.drop(name)
        else:
            await _drop_database(name)


class MigratedTemplates:
    """A database the migrations made, per backend, made on first use and copied for each test.

    Made lazily, inside the first test that needs one (and its event loop), so that a session
    that never asks for PostgreSQL never needs it."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._sqlite: Path | None = None
        self._postgres: str | None = None
        self._made: list[str] = []  # every template database made, to drop at the end

    async def sqlite_copy(self, path: Path) -> None:
        if self._sqlite is None:
            template = self._folder / "migrated.db"
            await _migrate(sqlite_url(template))
            self._sqlite = template
        shutil.copyfile(self._sqlite, path)

    async def postgres_template(self) -> str:
        if self._postgres is None:
            name = _random_name()
            await _create_database(name)
            self._made.append(name)
            await _migrate(_url_of(name))
            self._postgres = name
        return self._postgres

    def close(self) -> None:
        for name in self._made:
            asyncio.run(_drop_database(name))


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_async(engine)
    finally:
        # no connection may stay open: PostgreSQL copies a template only while nobody is on it
        await engine.dispose()
