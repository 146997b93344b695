"""The run queue on PostgreSQL: task throughput of 4 workers, and the latency of a run's status.

Run: ``uv run python bench/task_queue.py`` (a minute or two; PostgreSQL at
$HARMRANK_TEST_POSTGRES_URL, default ``postgresql://postgres@127.0.0.1:5432/postgres``, where
the user may CREATE DATABASE).

1. **Throughput.** A throwaway database, migrated by Alembic; per trial a fresh dataset and a
   run of ``--prompts`` prompts × 2 models (generate) + ``--prompts`` judge tasks, worked by
   the production worker (``run_worker``: up to ``--concurrency`` tasks in flight; whenever
   slots are free, claim up to ``--claim-batch`` of them with ``FOR UPDATE SKIP LOCKED`` and
   load what they need in one transaction; store the results and complete the tasks that
   finished together in another) with fake executors that answer at once. Four worker
   processes, each as ``harmrank worker`` runs by default: ``--concurrency`` and
   ``--claim-batch`` default to that command's defaults (``--mode in-process``: one worker in
   this process with four times the concurrency instead). Figure: generate and judge tasks
   settled per second, median of ``--trials``. Target: 500/s or more. ``--skip-latency`` stops
   after this part.
2. **Status latency.** ``harmrank serve gateway`` in a separate process on that database;
   an open-loop load generator (``http_load.py``: a light keep-alive client, so the load's
   own CPU is not taken from the gateway; errors counted) sends ``GET /v1/runs/{id}`` (a run
   of the last trial) at ``--rate`` requests/s for ``--seconds``, each timed from when it was
   due (so a slow answer delays no later request and hides no queueing), then
   ``GET /healthz`` the same way as the baseline. Figures: p50/p99 and the ratio to the
   baseline. Target: p99 under 50 ms.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# The repository's tests/ helpers, ahead of the `tests` package ppi-python installs.
import repo_tests

sys.path.insert(0, str(repo_tests.ROOT))
import argparse
import asyncio
import inspect
import os
import statistics
import subprocess
import time

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import free_port, throwaway_postgres_database
from tests.gateway.runs.helpers import Fakes, create, seed_dataset, spec

from harmrank.cli.main import worker as worker_command
from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.migrate import upgrade_async
from harmrank.gateway.db.run_models import Stage, Task, TaskState
from harmrank.gateway.runs.tasks import Backoff
from harmrank.gateway.runs.worker import run_worker
from harmrank.gateway.settings import GatewaySettings

WORKERS = 4
# What ``harmrank worker`` runs with when no flag or setting says otherwise.
DEFAULT_CONCURRENCY: int = inspect.signature(worker_command).parameters["concurrency"].default
DEFAULT_CLAIM_BATCH: int = GatewaySettings.model_fields["claim_batch"].default
SETTLED = (TaskState.DONE, TaskState.FAILED, TaskState.REUSED, TaskState.CANCELLED)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=1000, help="per trial (3 tasks each)")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--mode", choices=("processes", "in-process"), default="processes")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="most tasks in flight per worker (default: that of harmrank worker)",
    )
    parser.add_argument(
        "--claim-batch",
        type=int,
        default=DEFAULT_CLAIM_BATCH,
        help="most tasks a worker claims at once (default: that of harmrank worker)",
    )
    parser.add_argument(
        "--skip-latency", action="store_true", help="measure the throughput only (part 1)"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s of the load")
    parser.add_argument("--seconds", type=float, default=10.0, help="of load, per endpoint")
    return parser.parse_args()


# --- 1. throughput -------------------------------------------------------------------------


async def _work(
    url: str, worker_id: str, concurrency: int, claim_batch: int, stop: asyncio.Event
) -> None:
    engine = create_engine(url)
    try:
        await run_worker(
            session_factory(engine),
            Fakes().executors(),
            worker_id=worker_id,
            concurrency=concurrency,
            claim_batch=claim_batch,
            poll_interval=0.01,
            lease_seconds=30.0,
            stop_event=stop,
            backoff=Backoff(0.01, 0.05),
        )
    finally:
        await engine.dispose()


def worker_process(url: str, worker_id: str, concurrency: int, claim_batch: int) -> None:
    """A worker process; starts on a line on stdin, stops when stdin closes."""

    async def main() -> None:
        stopping = asyncio.Event()
        working = asyncio.create_task(_work(url, worker_id, concurrency, claim_batch, stopping))
        await asyncio.to_thread(sys.stdin.read)
        stopping.set()
        await working

    print("ready", flush=True)
    sys.stdin.readline()
    asyncio.run(main())


async def _settled(engine: AsyncEngine, run_id: int) -> tuple[int, int]:
    """(settled, all) generate and judge tasks of the run."""
    stages = (Stage.GENERATE, Stage.JUDGE)
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Task.state, func.count())
            .where(Task.run_id == run_id, Task.stage.in_(stages))
            .group_by(Task.state)
        )
        counts: dict[TaskState, int] = dict(rows.all())
    return sum(counts.get(s, 0) for s in SETTLED), sum(counts.values())


async def _plan(url: str, trial: int, prompts: int) -> int:
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        dataset = f"bench-{trial}"
        await seed_dataset(sessions, name=dataset, prompts=prompts)
        body = spec(
            prompts={"dataset": dataset},
            judges=[{"name": "judge-x", "orders": 1}],
            metrics={"p": 0.9, "resamples": 0},
        )
        return (await create(sessions, body)).id
    finally:
        await engine.dispose()


async def _until_settled(url: str, run_id: int) -> int:
    engine = create_engine(url)
    try:
        while True:
            settled, total = await _settled(engine, run_id)
            if settled == total:
                return total
            await asyncio.sleep(0.01)
    finally:
        await engine.dispose()


def trial_processes(url: str, run_id: int, args: argparse.Namespace) -> float:
    """Tasks per second with WORKERS worker processes."""
    limits = [str(args.concurrency), str(args.claim_batch)]
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, f"bench-{i}", *limits],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for i in range(WORKERS)
    ]
    for worker in workers:  # imported and connected: the clock starts now
        assert worker.stdout is not None
        assert worker.stdout.readline() == b"ready\n"
    started = time.perf_counter()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        worker.stdin.flush()
    total = asyncio.run(_until_settled(url, run_id))
    seconds = time.perf_counter() - started
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.close()
    for worker in workers:
        worker.wait(30)
    return total / seconds


def trial_in_process(url: str, run_id: int, args: argparse.Namespace) -> float:
    """Tasks per second with one worker in this process, as many slots as WORKERS workers."""

    async def main() -> float:
        stop = asyncio.Event()
        started = time.perf_counter()
        slots = WORKERS * args.concurrency
        working = asyncio.create_task(_work(url, "bench", slots, args.claim_batch, stop))
        total = await _until_settled(url, run_id)
        seconds = time.perf_counter() - started
        stop.set()
        await working
        return total / seconds

    return asyncio.run(main())


def throughput(url: str, args: argparse.Namespace) -> int:
    """Print the throughput figures; the id of the last trial's run."""
    trial = trial_processes if args.mode == "processes" else trial_in_process
    where = (
        f"{WORKERS} worker processes of concurrency {args.concurrency}"
        if args.mode == "processes"
        else f"1 worker in this process of concurrency {WORKERS * args.concurrency}"
    )
    print(f"{where}, claim_batch {args.claim_batch} ({_defaults(args)})")
    rates, run_id = [], 0
    for index in range(args.trials):
        run_id = asyncio.run(_plan(url, index, args.prompts))
        rates.append(trial(url, run_id, args))
        print(f"  trial {index + 1}: {rates[-1]:.0f} tasks/s")
    print(
        f"queue throughput, {where}, claim_batch {args.claim_batch}, "
        f"{3 * args.prompts} no-op tasks a trial: "
        f"median {statistics.median(rates):.0f} tasks/s (target >= 500)"
    )
    return run_id


def _defaults(args: argparse.Namespace) -> str:
    """Which of the limits are the defaults of ``harmrank worker``."""
    limits = {"concurrency": DEFAULT_CONCURRENCY, "claim_batch": DEFAULT_CLAIM_BATCH}
    return ", ".join(
        f"{name} {'=' if getattr(args, name) == default else '!='} harmrank worker's default"
        for name, default in limits.items()
    )


# --- 2. status latency ---------------------------------------------------------------------


def start_gateway(url: str, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "HARMRANK_GATEWAY_DATABASE_URL": url,
        "HARMRANK_GATEWAY_PORT": str(port),
        "HARMRANK_GATEWAY_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "harmrank.cli.main", "serve", "gateway"]
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the gateway did not start")


async def latency(base_url: str, run_id: int, args: argparse.Namespace) -> None:
    """Open loop with the light client of ``http_load.py`` (httpx would spend about a
    millisecond of the shared cores on each request); errors are counted and printed."""
    from http_load import Request, open_loop, percentile

    figures = {}
    for path in (f"/v1/runs/{run_id}", "/healthz"):
        mix = [Request(path, "GET", path)]
        await open_loop(base_url, mix, args.rate, 1.0)  # warm up
        outcome = await open_loop(base_url, mix, args.rate, args.seconds)
        for error, count in sorted(outcome.errors.items()):
            print(f"  {count} requests failed: {error}")
        measured = outcome.all_latencies()
        if not measured:
            print(f"GET {path}: no request succeeded")
            return
        figures[path] = (percentile(measured, 0.5), percentile(measured, 0.99))
        print(
            f"GET {path} at {args.rate:.0f}/s for {args.seconds:.0f} s: "
            f"p50 {figures[path][0]:.1f} ms, p99 {figures[path][1]:.1f} ms, "
            f"errors {sum(outcome.errors.values())}"
        )
    run, health = figures[f"/v1/runs/{run_id}"], figures["/healthz"]
    print(
        f"run status p99 {run[1]:.1f} ms (target < 50 ms); ratio to /healthz: "
        f"p50 {run[0] / health[0]:.1f}x, p99 {run[1] / health[1]:.1f}x"
    )


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        return worker_process(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    args = _arguments()

    async def database() -> None:
        async with throwaway_postgres_database() as url:
            engine = create_engine(url)
            await upgrade_async(engine)
            await engine.dispose()
            run_id = await asyncio.to_thread(throughput, url, args)
            if args.skip_latency:
                return
            port = free_port()
            gateway = await asyncio.to_thread(start_gateway, url, port)
            try:
                await latency(f"http://127.0.0.1:{port}", run_id, args)
            finally:
                gateway.terminate()
                gateway.wait(30)

    asyncio.run(database())


if __name__ == "__main__":
    main()
