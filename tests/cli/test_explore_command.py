"""``harmrank explore`` as a user runs it: over an OUT_DIR's database, on 127.0.0.1, its URL
printed; a folder without a database or a database without harmrank's tables is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.gateway.explore.conftest import samples, seed
from typer.testing import CliRunner

from harmrank.cli.main import app
from harmrank.gateway.db.engine import create_engine, session_factory, sqlite_url
from harmrank.gateway.db.migrate import upgrade_async


@pytest.fixture
async def out_dir(tmp_path: Path) -> Path:
    """An OUT_DIR as `harmrank reproduce` leaves it: harmrank.db, migrated and filled."""
    engine = create_engine(sqlite_url(tmp_path / "harmrank.db"))
    await upgrade_async(engine)
    await seed(session_factory(engine), samples(), dataset="study one")
    await engine.dispose()
    return tmp_path


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, process.stderr.read() if process.stderr else "no output"
    return line.strip()


def test_explore_serves_the_out_dir_on_localhost_and_prints_the_url(out_dir: Path) -> None:
    command = [sys.executable, "-m", "harmrank.cli.main", "explore", str(out_dir), "--port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": env}
    with subprocess.Popen(command, **pipes) as process:  # type: ignore[call-overload]
        try:
            line = _first_line(process)
            assert line.startswith("Explorer: http://127.0.0.1:")
            url = line.removeprefix("Explorer: ")
            assert url.endswith("/explore/?dataset=study%20one")
            base = url.split("/explore/")[0]
            listed = _get_when_up(f"{base}/v1/explore/prompts?dataset=study%20one")
            assert listed["total"] == 4
        finally:
            process.terminate()
            process.wait(timeout=10)


def _get_when_up(url: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        try:
            found = httpx.get(url, timeout=10)
            assert found.status_code == 200, found.text
            return dict(found.json())
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_folder_without_a_database_is_refused_with_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["explore", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 2
    assert "harmrank reproduce --out" in " ".join(result.output.split())


def test_a_database_without_harmrank_tables_is_refused(tmp_path: Path) -> None:
    (tmp_path / "harmrank.db").write_bytes(b"")
    result = CliRunner().invoke(app, ["explore", str(tmp_path)])
    assert result.exit_code == 2
    assert "database_not_migrated" in result.output


def test_out_dir_and_db_together_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["explore", str(tmp_path), "--db", "sqlite:///x.db"])
    assert result.exit_code == 2
    assert "OUT_DIR" in result.output
