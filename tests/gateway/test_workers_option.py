"""``harmrank serve gateway --workers N``: N processes on one port, one database, one migration."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.conftest import free_port, throwaway_postgres_database

TOKEN = "workers-test-token"


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


async def _ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the gateway exited"
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("the gateway did not become ready")


def _serve(db_url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMRANK_")} | {
        "HARMRANK_GATEWAY_DATABASE_URL": db_url,
        "HARMRANK_GATEWAY_MIGRATE_ON_START": "true",
        "HARMRANK_GATEWAY_API_TOKENS": f'["{TOKEN}"]',
        "HARMRANK_GATEWAY_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "harmrank.cli.main", "serve", "gateway"]
    options = ["--workers", str(workers), "--port", str(port)]
    return subprocess.Popen([*command, *options], env=env, stdin=subprocess.DEVNULL)


def _wait_for_children(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while len(_children(pid)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return _children(pid)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


async def test_two_gateway_processes_serve_one_database() -> None:
    """The database is migrated once, before the processes start (each would race the
    others); then writes through one process are read through the other."""
    async with throwaway_postgres_database() as db_url:
        port = free_port()
        process = _serve(db_url, port, workers=2)
        url = f"http://127.0.0.1:{port}"
        try:
            await _ready(url, process)
            assert len(_wait_for_children(process.pid, 2)) >= 2
            await _write_then_read_on_any_process(url)
        finally:
            _stop(process)


async def _write_then_read_on_any_process(url: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    # A new connection per request, so the kernel spreads them over both processes.
    for i in range(6):
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
            files = {"file": ("p.jsonl", b'{"text": "a calm ask?"}', "application/x-ndjson")}
            created = await client.post("/v1/datasets", files=files, data={"name": f"d{i}"})
            assert created.status_code == 201, created.text
            anonymous = await client.post("/v1/datasets", headers={"Authorization": ""})
            assert anonymous.status_code == 401
    for i in range(6):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            detail = await client.get(f"/v1/datasets/d{i}")
            assert (detail.status_code, detail.json()["prompts"]) == (200, 1)
            listed = await client.get("/v1/datasets")
            assert [d["name"] for d in listed.json()["items"]] == [f"d{j}" for j in range(6)]


def test_workers_need_one_service() -> None:
    """The local stack runs its four services in one process: no --workers there."""
    from typer.testing import CliRunner

    from harmrank.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers needs a SERVICE" in result.output
