"""Fixtures every test folder shares: real HTTP servers on loopback, and real databases.

Every database test gets a fresh database that the Alembic migrations made, as in production: a
SQLite file in tmp_path, or a PostgreSQL database with a random name that is dropped afterwards
(copies of a template the migrations made once per session: see tests/databases.py).
PostgreSQL is never skipped: CI provides it, so its absence is a failure (`make postgres`).
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp
from tests.databases import (
    Drops,
    MigratedTemplates,
    postgres_admin_url,
    throwaway_postgres_database,
)

from harmrank.common.heap import TUNING_ENV
from harmrank.gateway.db.engine import create_engine, session_factory, sqlite_url
from harmrank.gateway.db.migrate import upgrade_async

# other test modules import these from here
__all__ = ["postgres_admin_url", "throwaway_postgres_database"]

# Hundreds of apps start and stop in this one process: its collector stays CPython's own
# (harmrank.common.heap tunes a service's or worker's once it has started).
os.environ.setdefault(TUNING_ENV, "off")

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


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def drops() -> Iterator[Drops]:
    """The tests' PostgreSQL databases, dropped in the background (see tests/databases.py)."""
    pending = Drops()
    yield pending
    pending.finish()


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedTemplates]:
    templates = MigratedTemplates(tmp_path_factory.mktemp("migrated-templates"))
    yield templates
    templates.close()


@pytest.fixture
async def db_url(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    drops: Drops,
    migrated_templates: MigratedTemplates,
) -> AsyncIterator[str]:
    """The URL of a fresh database: empty (not migrated), unless the test asks for
    ``migrated_engine``, which then starts from a copy of a database the migrations made."""
    migrated = "migrated_engine" in request.fixturenames
    if backend == "sqlite":
        path = tmp_path / "harmrank.db"
        if migrated:
            await migrated_templates.sqlite_copy(path)
        yield sqlite_url(path)
    else:
        template = await migrated_templates.postgres_template() if migrated else None
        async with throwaway_postgres_database(template, drops) as url:
            yield url


@pytest.fixture
async def migrated_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    try:
        await upgrade_async(engine)  # at head already when copied from the template: a check
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
