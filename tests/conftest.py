"""Fixtures every test folder shares: real HTTP servers on loopback, and real databases.

Every database test gets a fresh database that the Alembic migrations made, as in production: a
SQLite file in tmp_path, or a PostgreSQL database with a random name that is dropped afterwards.
PostgreSQL is never skipped: CI provides it, so its absence is a failure (`make postgres`).
"""

from __future__ import annotations

import io
import os
import secrets
import socket
import threading
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool
from starlette.types import ASGIApp

from harmrank.gateway.db.engine import (
    create_engine,
    normalise_url,
    redact_url,
    session_factory,
    sqlite_url,
)
from harmrank.gateway.db.migrate import upgrade_async

ServeApp = Callable[[ASGIApp], str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """An ASGI app served by uvicorn in a thread, lifespan included, until stopped."""

    def __init__(self, app: ASGIApp) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def serve_app() -> Iterator[ServeApp]:
    """Serve apps over real HTTP on loopback; answers each app's base URL."""
    servers: list[LiveServer] = []

    def serve(app: ASGIApp) -> str:
        server = LiveServer(app)
        server.start()
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.stop()


POSTGRES_ADMIN_URL_ENV = "HARMRANK_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty database (not migrated)."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path / "harmrank.db")
    else:
        async with throwaway_postgres_database() as url:
            yield url


@pytest.fixture
async def migrated_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    try:
        await upgrade_async(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def session_maker(migrated_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(migrated_engine)


@pytest.fixture
async def session(session_maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with session_maker() as session:
        yield session


def postgres_admin_url() -> URL:
    raw = os.environ.get(POSTGRES_ADMIN_URL_ENV, DEFAULT_POSTGRES_ADMIN_URL)
    return make_url(normalise_url(raw))


@asynccontextmanager
async def throwaway_postgres_database() -> AsyncIterator[str]:
    admin_url = postgres_admin_url()
    name = f"harmrank_test_{secrets.token_hex(6)}"
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin = create_engine(
        admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5}
    )
    try:
        await _create_database(admin, name)
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                # FORCE: a connection a failed test leaked must not keep the database alive.
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def _create_database(admin: AsyncEngine, name: str) -> None:
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    except (OSError, DBAPIError) as exc:
        pytest.fail(
            f"PostgreSQL at {redact_url(admin.url)} is needed by the gateway tests and could not"
            f" create a database ({type(exc).__name__}: {exc}). Start it with `make postgres`, or"
            f" point {POSTGRES_ADMIN_URL_ENV} at a server where the user may CREATE DATABASE.",
            pytrace=False,
        )


# The study's public data, shipped beside the repository (read only, never copied into it).
STUDY_FOLDER = Path("paper-data") / "llm-harm-psunlpgroup"


def find_paper_data() -> Path | None:
    """The study's data: $HARMRANK_PAPER_DATA, else ``shared/`` beside the checkout (where this
    workplace keeps it), else the workplace's own ``/work/shared`` (a clone made elsewhere)."""
    candidates = [
        os.environ.get("HARMRANK_PAPER_DATA"),
        Path(__file__).resolve().parents[2] / "shared" / STUDY_FOLDER,
        Path("/work/shared") / STUDY_FOLDER,
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "gpt4o_predictions.csv").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def paper_data() -> Path:
    """The study's data as shipped beside the repository (read only, never copied into it)."""
    found = find_paper_data()
    if found is None:
        pytest.fail("the study's data was not found: set HARMRANK_PAPER_DATA to its folder")
    return found


def zip_of(folder: Path, prefix: str = "LLM-Harm-21028997/") -> bytes:
    """A zip laid out like GitHub's archive of the repository (one top folder)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*.csv")):
            zf.write(path, prefix + path.relative_to(folder).as_posix())
    return buffer.getvalue()


@pytest.fixture(scope="session")
def paper_zip(paper_data: Path) -> bytes:
    return zip_of(paper_data)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own download cache, so none sees another's."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("HARMRANK_CACHE_DIR", str(cache))
    monkeypatch.delenv("HARMRANK_DATABASE_URL", raising=False)
    return cache
