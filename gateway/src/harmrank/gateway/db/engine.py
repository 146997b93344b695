"""Database URLs, async engines and session factories for SQLite and PostgreSQL, and the count
of rows a statement changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Result, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from harmrank.common.tracing import instrument_engine

if TYPE_CHECKING:
    from harmrank.gateway.settings import GatewaySettings

DATABASE_URL_ENV = "HARMRANK_DATABASE_URL"

# The async driver to use when a URL names only the backend (or the sync default driver).
_ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


class DatabaseURLError(ValueError):
    """A database URL that cannot be used; the message never contains the URL itself."""


def normalise_url(url: str | URL) -> str:
    """The URL with an async driver: `postgresql://` becomes `postgresql+asyncpg://` and so on.

    libpq's `sslmode` (what managed databases hand out) becomes asyncpg's `ssl`: SQLAlchemy
    passes query parameters to `asyncpg.connect` as keywords, and that has no `sslmode`.
    """
    parsed = _parse(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername)
    parsed = parsed.set(drivername=driver)
    if driver == "postgresql+asyncpg" and "sslmode" in parsed.query:
        mode = parsed.query["sslmode"]
        parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
    return parsed.render_as_string(hide_password=False)


def redact_url(url: str | URL) -> str:
    """The URL as it may appear in logs: password masked."""
    return _parse(url).render_as_string(hide_password=True)


def database_url_from_env(default_sqlite_path: Path) -> str:
    """`HARMRANK_DATABASE_URL`, normalised; a SQLite file at the given path when unset."""
    raw = os.environ.get(DATABASE_URL_ENV, "").strip()
    if raw:
        return normalise_url(raw)
    return sqlite_url(default_sqlite_path)


def database_url(settings: GatewaySettings) -> str:
    """The gateway's and workers' database: ``database_url`` when set, else
    ``HARMRANK_DATABASE_URL``, else SQLite at ``sqlite_path``; normalised."""
    if settings.database_url is not None:
        return normalise_url(settings.database_url.get_secret_value())
    return database_url_from_env(settings.sqlite_path)


def sqlite_url(path: Path) -> str:
    return str(URL.create("sqlite+aiosqlite", database=str(path)))


def create_engine(url: str | URL, *, pre_ping: bool = True, **kwargs: Any) -> AsyncEngine:
    """An async engine for the URL; extra keyword arguments go to `create_async_engine`.

    ``pre_ping`` (PostgreSQL) tests each pooled connection with a round trip when it is checked
    out, so a request never fails on a connection the server dropped. A caller that retries
    its own failed transactions anyway (the worker: by lease) can do without that round trip
    on every transaction: SQLAlchemy still notices a dropped connection when it fails, and
    then replaces every connection of the pool older than that failure."""
    url = make_url(normalise_url(url))
    if url.get_backend_name() == "sqlite":
        engine = _create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
    else:
        options: dict[str, Any] = {"pool_pre_ping": pre_ping, "pool_recycle": 1800}
        if "poolclass" not in kwargs:
            options |= {"pool_size": 5, "max_overflow": 10, "pool_timeout": 30}
        engine = _create_async_engine(url, **(options | kwargs))
    instrument_engine(engine)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: an expired attribute would need I/O on access, which async forbids.
    return async_sessionmaker(engine, expire_on_commit=False)


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched."""
    # Such a statement's result is a CursorResult; the session's signature only promises a Result.
    return int(cast(CursorResult[Any], result).rowcount)


def _parse(url: str | URL) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise DatabaseURLError("the database URL could not be parsed") from None


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # SQLite ignores foreign keys, and so ON DELETE CASCADE, unless each connection asks.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()
