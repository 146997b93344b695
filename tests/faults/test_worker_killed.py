"""A worker process killed with SIGKILL mid-run: another one finishes the run, nothing twice."""

from __future__ import annotations

from pathlib import Path

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

from harmrank.gateway.db.run_models import Stage

PROMPTS = 8


async def test_a_killed_worker_s_tasks_are_finished_by_a_new_one(
    pg_url: str, servers: Servers, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    # Slow generations, so the kill lands while calls are in flight.
    downstreams = start_downstreams(servers, tgi_latency=0.3)
    await migrate(pg_url)
    gateway = start_gateway(servers, gateway_settings(pg_url, downstreams))
    async with client(gateway.url) as http:
        run = await start_run(http, "killed", PROMPTS)
        # Three tasks in flight at most (the worker's concurrency), of 24 generations: the
        # kill lands while some are done and others in flight.
        first = WorkerProcess(worker_env(pg_url, downstreams, "first"), tmp_path / "first.log")
        workers.append(first)
        await wait_for(
            http,
            run["id"],
            lambda r: count(r, "generate", "done") >= 3 and count(r, "generate", "running") >= 2,
        )
        first.kill()
        killed_mid_task = await stored(pg_url, run["id"])
        assert killed_mid_task.states(Stage.GENERATE).get("running", 0) >= 1

        second = WorkerProcess(worker_env(pg_url, downstreams, "second"), tmp_path / "second.log")
        workers.append(second)
        final = await wait_for(http, run["id"], finished, within=90)

    assert final["status"] == "done", final
    assert count(final, "generate", "done") == PROMPTS * 3
    assert count(final, "judge", "done") == PROMPTS * len(JUDGES)
    found = await stored(pg_url, run["id"])
    assert_exactly_once(found, PROMPTS, PROMPTS * len(JUDGES))
    # The killed worker's leases expired and its tasks were claimed again (a second attempt).
    assert found.max_attempts() >= 2
    assert downstreams.generation_calls() >= PROMPTS * 3
