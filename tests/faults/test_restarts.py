"""PostgreSQL and the gateway restarted mid-run: workers reconnect, the API and the run resume."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.faults.postgres import available, own_cluster
from tests.faults.stack import (
    JUDGES,
    Servers,
    WorkerProcess,
    assert_exactly_once,
    client,
    count,
    finished,
    gateway_settings,
    migrate,
    start_downstreams,
    start_gateway,
    start_run,
    stored,
    wait_for,
    worker_env,
)

PROMPTS = 8


@pytest.mark.skipif(not available(), reason="needs PostgreSQL's initdb and pg_ctl")
async def test_workers_reconnect_after_postgresql_restarts(
    servers: Servers, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    with own_cluster() as cluster:
        downstreams = start_downstreams(servers, tgi_latency=0.1)
        await migrate(cluster.url)
        gateway = start_gateway(servers, gateway_settings(cluster.url, downstreams))
        async with client(gateway.url) as http:
            run = await start_run(http, "restarted", PROMPTS)
            for name in ("a", "b"):
                env = worker_env(cluster.url, downstreams, name)
                workers.append(WorkerProcess(env, tmp_path / f"{name}.log", concurrency=2))
            await wait_for(http, run["id"], lambda r: count(r, "generate", "done") >= 4)
            cluster.restart()  # every connection is cut, as in a crash or a failover
            final = await wait_for(http, run["id"], finished, within=90)
        assert final["status"] == "done", final
        assert count(final, "judge", "done") == PROMPTS * len(JUDGES)
        assert_exactly_once(await stored(cluster.url, run["id"]), PROMPTS, PROMPTS * len(JUDGES))
        assert all(w.process.poll() is None for w in workers)  # they rode it out


@pytest.mark.skipif(not available(), reason="needs PostgreSQL's initdb and pg_ctl")
async def test_a_worker_started_while_postgresql_is_down_waits_for_it(
    servers: Servers, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    with own_cluster() as cluster:
        downstreams = start_downstreams(servers, tgi_latency=0.0)
        await migrate(cluster.url)
        gateway = start_gateway(servers, gateway_settings(cluster.url, downstreams))
        async with client(gateway.url) as http:
            run = await start_run(http, "late-database", PROMPTS)
            cluster.stop()
            worker = WorkerProcess(worker_env(cluster.url, downstreams, "a"), tmp_path / "a.log")
            workers.append(worker)
            for _ in range(200):  # until it has found the database away at least once
                if "does not answer yet" in worker.output():
                    break
                assert worker.process.poll() is None, worker.output()
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the worker never said it waits: {worker.output()}")
            cluster.start()
            final = await wait_for(http, run["id"], finished, within=90)
        assert final["status"] == "done", final
        assert_exactly_once(await stored(cluster.url, run["id"]), PROMPTS, PROMPTS * len(JUDGES))
        assert worker.process.poll() is None


async def test_the_api_and_the_run_resume_after_the_gateway_restarts(
    pg_url: str, servers: Servers
) -> None:
    downstreams = start_downstreams(servers, tgi_latency=0.1)
    await migrate(pg_url)
    # The gateway works the run with its in-process worker: stopping it stops the run too.
    settings = gateway_settings(pg_url, downstreams, worker_loops=2)
    gateway = start_gateway(servers, settings)
    async with client(gateway.url) as http:
        run = await start_run(http, "resumed", PROMPTS)
        await wait_for(http, run["id"], lambda r: count(r, "generate", "done") >= 3)
        gateway.stop()
        with pytest.raises(httpx.ConnectError):
            await http.get("/v1/runs")
        halted = await stored(pg_url, run["id"])
        assert halted.states_running() == 0  # a graceful stop finishes what it holds

        start_gateway(servers, settings, port=gateway.port)
        assert (await http.get("/readyz")).status_code == 200
        final = await wait_for(http, run["id"], finished, within=90)
        again = await http.get(f"/v1/runs/{run['id']}/tasks", params={"limit": 500})
        assert again.status_code == 200
    assert final["status"] == "done", final
    assert_exactly_once(await stored(pg_url, run["id"]), PROMPTS, PROMPTS * len(JUDGES))
