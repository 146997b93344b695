"""The Results dashboard's read-only role (``deploy/grafana/reader-role.sql``), made with psql on
a migrated PostgreSQL database: every SQL panel and the ``$run`` variable run as that role, and
it can read no table the dashboard does not need and write nothing."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from tests.deploy.conftest import ROOT
from tests.deploy.dashboards import load, sql_queries, variables

from harmrank.gateway.db.engine import create_engine

SQL = ROOT / "deploy" / "grafana" / "reader-role.sql"
ROLE = "harmrank_grafana"


@pytest.fixture
async def reader_url(backend: str, db_url: str, migrated_engine: object) -> AsyncIterator[URL]:
    if backend != "postgresql":
        pytest.skip("the results views exist on PostgreSQL only")
    psql = shutil.which("psql")
    assert psql, "psql is needed"
    # Roles are global to the server: a name of its own, so parallel runs do not collide.
    role, password = f"grafana_{secrets.token_hex(4)}", secrets.token_hex(8)
    libpq = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    script = SQL.read_text().replace(ROLE, role)
    done = await asyncio.to_thread(
        subprocess.run,
        [psql, libpq, "-v", "ON_ERROR_STOP=1", "-v", f"password='{password}'", "-f", "-"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    admin = create_engine(db_url, poolclass=NullPool)
    try:
        yield make_url(db_url).set(username=role, password=password)
    finally:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP OWNED BY "{role}"'))
            await connection.execute(text(f'DROP ROLE "{role}"'))
        await admin.dispose()


async def _run(url: URL, sql: str) -> list[object]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return list(await connection.execute(text(sql.replace("$run", "1"))))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_every_results_query_runs_as_the_reader(reader_url: URL) -> None:
    queries = [q.text for q in sql_queries()]
    queries += [v["query"] for v in variables(load("results")) if v["type"] == "query"]
    assert queries
    for sql in queries:
        await _run(reader_url, sql)  # a missing grant is a permission error


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM responses",
        "SELECT * FROM prompts",
        "SELECT * FROM tasks",
        "DELETE FROM run_reports",
        "CREATE TABLE mine (x int)",
    ],
)
async def test_the_reader_can_do_nothing_else(reader_url: URL, sql: str) -> None:
    with pytest.raises(DBAPIError, match=r"permission denied|read-only transaction"):
        await _run(reader_url, sql)
