"""Uploads are read in the gateway's parsing process, never on its event loop: while that
process is paused (SIGSTOP) an upload waits and every other route answers, and a rankings
import holds no pooled connection while it waits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import pytest
from pydantic import SecretStr
from tests.conftest import ServeApp
from tests.gateway.hardening.workers import paused, pool, worker_pid
from tests.gateway.runs.helpers import Sessions, eventually

from harmrank.gateway.app import create_app
from harmrank.gateway.cpu_pool import NICENESS, PARSE, CpuPool, WorkerLost
from harmrank.gateway.settings import GatewaySettings


def lines(*objects: object) -> bytes:
    return "\n".join(json.dumps(o) for o in objects).encode()


async def test_uploads_wait_for_the_parsing_process_while_other_routes_answer(
    seeded: Sessions, db_url: str, serve_app: ServeApp
) -> None:
    app = create_app(GatewaySettings(database_url=SecretStr(db_url), parse_processes=1))
    url = serve_app(app)
    engine = app.state.sessions.kw["bind"]
    parsing = pool(app, PARSE)
    prompts = {"file": ("p.jsonl", lines({"text": "a"}, {"text": "b"}), "application/x-ndjson")}
    rankings = {
        "file": ("r.jsonl", lines({"annotator": "new", "prompt_id": "s0", "ranks": [1, 0, 0]}))
    }
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        with paused(await worker_pid(app, PARSE)):
            upload = asyncio.create_task(
                client.post("/v1/datasets", files=prompts, data={"name": "fresh"})
            )
            imported = asyncio.create_task(
                client.post("/v1/datasets/studylike/rankings", files=rankings)
            )

            async def both_sent_to_the_process() -> bool:
                return parsing.in_flight == 2

            await eventually(both_sent_to_the_process, within=30)
            # The import read the dataset's models first, then let its connection go.
            assert engine.pool.checkedout() == 0
            assert (await client.get("/v1/datasets/studylike")).status_code == 200
            assert (await client.get("/healthz")).status_code == 200
            assert not upload.done()
            assert not imported.done()
        assert (await upload).status_code == 201
        assert (await imported).json()["inserted"] == 1


async def test_a_worker_imports_only_what_its_work_needs() -> None:
    pool = CpuPool("test", 1)
    try:
        # A builtin, as a test module's function would be imported by name in the worker.
        modules = set(await pool.run(eval, "list(__import__('sys').modules)"))
        main = await pool.run(eval, "__import__('sys').modules['__main__'].__name__")
        # Not the main module run again as __mp_main__ (pytest's script here; the gateway's
        # imports the whole CLI), nor the report modules before a report.
        assert main == "__main__"
        assert "matplotlib" not in modules
        assert "harmrank.gateway.report_api.compute" not in modules
        assert "harmrank.gateway.cpu_worker" in modules
    finally:
        await pool.close()


async def test_the_workers_run_at_a_lower_priority_and_a_lost_one_is_replaced() -> None:
    pool = CpuPool("test", 1)
    try:
        assert await pool.run(os.nice, 0) == min(os.nice(0) + NICENESS, 19)
        # The fork server the worker came from too, so its imports yield the CPU as well.
        fork_server = await pool.run(os.getppid)
        assert fork_server != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, fork_server) == min(os.nice(0) + NICENESS, 19)
        pid = await pool.run(os.getpid)
        running = asyncio.create_task(pool.run(time.sleep, 60))
        await asyncio.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerLost, match="test worker process ended before it answered"):
            await running
        assert await pool.run(os.getpid) not in (pid, os.getpid())
        assert pool.in_flight == 0
    finally:
        await pool.close()
