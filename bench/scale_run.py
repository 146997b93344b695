"""A run at scale: 5,000 prompts, 15,000 generations and 15,000 judgments, every part a process.

Run: ``uv run python bench/scale_run.py`` (the full size), or ``--prompts 200`` for a quick
check. Three TGI stand-ins and two provider stand-ins (OpenAI, Anthropic wire formats) each run
in a process of their own; so do the generator, the judge, the metrics service (the run's score
task sends it the rankings) and the gateway (``harmrank serve``)
and the workers (``harmrank worker``), against a fresh database on the PostgreSQL server of the
tests (``HARMRANK_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432``). Judge
``gpt4o`` is asked for two presentation orders and ``claude`` for one: 3 judgments a prompt.

Prints wall time (run created → report stored), throughput in tasks/s and each process's peak
resident memory (VmHWM). Targets: the run completes with every result, each harmrank process
under 500 MB.

The platform expects PostgreSQL's autovacuum, as any queue in PostgreSQL does: a task's row is
updated two or three times, and without VACUUM and ANALYZE the claims' index scans wade through
dead row versions under statistics that still say "every task is queued" (on this machine's
server, whose configuration turns autovacuum off, a 50,000-prompt run's claims took 170–240 ms
each by the time 140,000 tasks were done, and the run slowed from 400 to 5 tasks/s). When the
server's autovacuum is off, this benchmark does its work: ``VACUUM (ANALYZE) tasks`` every
``--vacuum-every`` seconds (autovacuum's own naptime is a minute), and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
# The repository's tests/ helpers, ahead of the `tests` package ppi-python installs.
import repo_tests

sys.path.insert(0, str(repo_tests.ROOT))
from tests.conftest import throwaway_postgres_database

from harmrank.gateway.db.engine import create_engine
from processes import TOKEN, Processes, stack_gateway_env

MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
KEYS = {"openai": "sk-bench-openai-key", "anthropic": "sk-ant-bench-key"}
JUDGES = (("gpt4o", "openai", 2), ("claude", "anthropic", 1))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=5000)
    parser.add_argument(
        "--vacuum-every",
        type=float,
        default=60.0,
        help="when the server's autovacuum is off, VACUUM (ANALYZE) tasks this often (s)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=16, help="tasks in flight per worker")
    parser.add_argument("--latency", type=float, default=0.0, help="stand-in latency in s")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after (s)")
    return parser.parse_args()


def _start(procs: Processes, db_url: str, args: argparse.Namespace) -> str:
    latency = ["--latency", str(args.latency)]
    models = []
    for name in MODELS:
        tgi = procs.standin("tgi", f"tgi-{name}", "--model-id", f"org/{name}", *latency)
        models.append(
            {"name": name, "base_url": tgi.url, "prompt_template": "{prompt}\n", "concurrency": 32}
        )
    judges = []
    for name, provider, _ in JUDGES:
        standin = procs.standin(provider, provider, "--key", KEYS[provider], *latency)
        judges.append(
            {"name": name, "provider": provider, "model": f"{provider}-m", "base_url": standin.url}
        )
    quiet = {"HARMRANK_GENERATOR_LOG_LEVEL": "warning", "HARMRANK_JUDGE_LOG_LEVEL": "warning"}
    generator = procs.serve("generator", {**quiet, "HARMRANK_GENERATOR_MODELS": json.dumps(models)})
    limits = {p: {"max_concurrency": 64} for _, p, _ in JUDGES}
    judge_env = {
        **quiet,
        "HARMRANK_JUDGE_JUDGES": json.dumps(judges),
        "HARMRANK_JUDGE_LIMITS": json.dumps(limits),
        "HARMRANK_JUDGE_OPENAI_API_KEY": KEYS["openai"],
        "HARMRANK_JUDGE_ANTHROPIC_API_KEY": KEYS["anthropic"],
    }
    judge = procs.serve("judge", judge_env)
    metrics = procs.serve("metrics", {"HARMRANK_METRICS_LOG_LEVEL": "warning"})
    gateway_env = {
        **stack_gateway_env(db_url, generator, judge, metrics),
        "HARMRANK_GATEWAY_RETRY_BASE_SECONDS": "0.5",
        "HARMRANK_GATEWAY_RETRY_MAX_SECONDS": "5",
    }
    gateway = procs.serve("gateway", {**gateway_env, "HARMRANK_GATEWAY_MIGRATE_ON_START": "true"})
    for i in range(args.workers):
        command = [procs_harmrank(), "worker", "--concurrency", str(args.concurrency)]
        procs.start(
            f"worker-{i}", command, {**gateway_env, "HARMRANK_GATEWAY_WORKER_ID": f"w{i}"}, None
        )
    assert gateway.url is not None
    return gateway.url


def procs_harmrank() -> str:
    from processes import HARMRANK

    return HARMRANK


async def _run(gateway: str, args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=120) as http:
        lines = [
            json.dumps({"id": f"p{i}", "text": f"benchmark prompt {i}?"})
            for i in range(args.prompts)
        ]
        files = {"file": ("p.jsonl", "\n".join(lines).encode(), "application/x-ndjson")}
        uploaded = await http.post("/v1/datasets", files=files, data={"name": "scale"})
        assert uploaded.status_code == 201, uploaded.text
        spec = {
            "prompts": {"dataset": "scale"},
            "models": [{"name": m, "params": {"max_new_tokens": 16, "seed": 1}} for m in MODELS],
            "judges": [{"name": n, "orders": o} for n, _, o in JUDGES],
            "metrics": {"p": 0.9, "resamples": 200},
        }
        started = time.perf_counter()
        created = await http.post("/v1/runs", json=spec)
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            run: dict[str, Any] = (await http.get(f"/v1/runs/{run_id}")).json()
            if run["status"] in ("done", "failed", "cancelled") and run["has_report"]:
                return run, time.perf_counter() - started
            await asyncio.sleep(1)
        raise SystemExit(f"the run did not finish in {args.timeout} s: {run}")


async def autovacuum_stand_in(db_url: str, every: float) -> None:
    """Do autovacuum's work on the tasks table when the server does not (see the docstring)."""
    engine = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            if (await connection.execute(text("SHOW autovacuum"))).scalar_one() == "on":
                return
            print(f"the server's autovacuum is off: VACUUM (ANALYZE) tasks every {every:.0f} s")
            while True:
                await asyncio.sleep(every)
                await connection.execute(text("VACUUM (ANALYZE) tasks"))
    finally:
        await engine.dispose()


async def main() -> None:
    args = _arguments()
    logs = Path(tempfile.mkdtemp(prefix="harmrank-scale-"))
    procs = Processes(logs)
    async with throwaway_postgres_database() as db_url:
        try:
            gateway = _start(procs, db_url, args)
            vacuuming = asyncio.create_task(autovacuum_stand_in(db_url, args.vacuum_every))
            try:
                run, wall = await _run(gateway, args)
            finally:
                vacuuming.cancel()
            rss = {p.name: p.peak_rss_mb() for p in procs.started}
        finally:
            procs.stop_all()
    progress = run["progress"]
    tasks = sum(sum(states.values()) for states in progress.values())
    print(f"prompts: {args.prompts}; workers: {args.workers} x {args.concurrency} tasks in flight")
    print(f"status: {run['status']}")
    for stage, states in progress.items():
        print(f"  {stage}: {', '.join(f'{s} {n}' for s, n in states.items() if n)}")
    print(f"wall time: {wall:.1f} s; throughput: {tasks / wall:.1f} tasks/s ({tasks} tasks)")
    print("peak RSS (VmHWM):")
    for name, mb in rss.items():
        print(f"  {name:24s} {mb:7.1f} MB")
    print(f"logs: {logs}")


if __name__ == "__main__":
    asyncio.run(main())
