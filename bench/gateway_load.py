"""The gateway under open-loop load: 200 mixed requests/s against PostgreSQL, on loopback.

Run: ``uv run python bench/gateway_load.py`` (20 s per phase), or ``--seconds 5`` for a quick
check. The gateway runs as ``harmrank serve gateway`` in a process of its own (so the load
generator does not share its event loop), on a fresh database of the tests' PostgreSQL server
(``HARMRANK_TEST_POSTGRES_URL``), seeded with a 200-prompt dataset, responses of three models
and a planned run of 1,200 tasks.

The load is open-loop: request i is due at ``start + i / rate`` whatever became of the ones
before, and its latency counts from when it was due, so a slow server cannot slow the
arrivals and hide its own queueing (coordinated omission). The mix: run list and run status,
dataset list and detail, a page of responses, and dataset uploads (5%). A baseline phase
sends the same arrivals to ``/healthz`` first, for a ratio. Target: p99 < 50 ms, no errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # to import the test helpers

from tests.conftest import throwaway_postgres_database

from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.models import Dataset, Model, Prompt, Response
from processes import Processes

TOKEN = "bench-write-token"
MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    return parser.parse_args()


def _jsonl(count: int, tag: str) -> bytes:
    return "\n".join(json.dumps({"text": f"{tag} prompt {i}?"}) for i in range(count)).encode()


async def _seed(gateway: str, db_url: str) -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=60) as http:
        files = {"file": ("p.jsonl", _jsonl(200, "seed"), "application/x-ndjson")}
        assert (await http.post("/v1/datasets", files=files, data={"name": "seed"})).is_success
        spec = {
            "prompts": {"dataset": "seed"},
            "models": [{"name": m} for m in MODELS],
            "judges": [{"name": "gpt4o", "orders": 2}, {"name": "claude"}],
        }
        created = await http.post("/v1/runs", json=spec)
        assert created.status_code == 201, created.text
        run_id: int = created.json()["id"]
    engine = create_engine(db_url)
    try:
        async with session_factory(engine).begin() as session:
            prompts = (await session.execute(Prompt.__table__.select())).all()
            models = {m.name: m.id for m in (await session.execute(Model.__table__.select())).all()}
            session.add_all(
                Response(
                    prompt_id=p.id,
                    model_id=models[m],
                    generation_key="g",
                    text=f"{m}: reply",
                    source="bench",
                )
                for p in prompts
                for m in MODELS
            )
            assert await session.get(Dataset, prompts[0].dataset_id) is not None
    finally:
        await engine.dispose()
    return run_id


def _mix(run_id: int) -> list[Send]:
    upload_headers = {"Authorization": f"Bearer {TOKEN}"}

    async def upload(http: httpx.AsyncClient, i: int) -> httpx.Response:
        files = {"file": ("p.jsonl", _jsonl(10, f"load {i}"), "application/x-ndjson")}
        return await http.post(
            "/v1/datasets", files=files, data={"name": f"load-{i}"}, headers=upload_headers
        )

    def get(path: str) -> Send:
        async def send(http: httpx.AsyncClient, _: int) -> httpx.Response:
            return await http.get(path)

        return send

    # 20 slots: 5% uploads, the rest reads.
    reads = [
        *[get("/v1/runs?limit=20")] * 4,
        *[get(f"/v1/runs/{run_id}")] * 4,
        *[get("/v1/datasets?limit=20")] * 3,
        *[get("/v1/datasets/seed")] * 3,
        *[get("/v1/datasets/seed/responses?limit=50")] * 5,
    ]
    return [*reads, upload]


async def _phase(
    base_url: str, rate: float, seconds: float, mix: list[Send]
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        start = time.perf_counter() + 0.2
        count = int(rate * seconds)

        async def one(i: int) -> None:
            nonlocal errors
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                answer = await mix[i % len(mix)](http, i)
                if answer.status_code >= 400:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - due)

        await asyncio.gather(*(one(i) for i in range(count)))
    return latencies, errors


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _report(name: str, latencies: list[float], errors: int, seconds: float) -> dict[str, float]:
    figures = {q: _percentile(latencies, q) for q in (0.5, 0.95, 0.99)}
    print(
        f"{name:10s} {len(latencies) / seconds:6.1f} req/s  p50 {figures[0.5]:6.1f} ms  "
        f"p95 {figures[0.95]:6.1f} ms  p99 {figures[0.99]:6.1f} ms  max "
        f"{max(latencies) * 1000:6.1f} ms  errors {errors}"
    )
    return {"p50": figures[0.5], "p95": figures[0.95], "p99": figures[0.99]}


async def main() -> None:
    args = _arguments()
    procs = Processes(Path(tempfile.mkdtemp(prefix="harmrank-load-")))
    async with throwaway_postgres_database() as db_url:
        try:
            env = {
                "HARMRANK_GATEWAY_DATABASE_URL": db_url,
                "HARMRANK_GATEWAY_MIGRATE_ON_START": "true",
                "HARMRANK_GATEWAY_API_TOKENS": json.dumps([TOKEN]),
                "HARMRANK_GATEWAY_LOG_LEVEL": "warning",
            }
            gateway = procs.serve("gateway", env)
            assert gateway.url is not None
            run_id = await _seed(gateway.url, db_url)
            await _phase(gateway.url, args.rate, 2, _mix(run_id))  # warm up
            health = [lambda http, _: http.get("/healthz")]
            base, base_errors = await _phase(gateway.url, args.rate, args.seconds, health)
            load, load_errors = await _phase(gateway.url, args.rate, args.seconds, _mix(run_id))
            rss = gateway.peak_rss_mb()
        finally:
            procs.stop_all()
    print(f"open loop, {args.rate:.0f} requests/s for {args.seconds:.0f} s per phase")
    baseline = _report("/healthz", base, base_errors, args.seconds)
    mixed = _report("mixed", load, load_errors, args.seconds)
    print(f"p99 ratio mixed / baseline: {mixed['p99'] / baseline['p99']:.1f}x")
    print(f"gateway peak RSS: {rss:.1f} MB")


if __name__ == "__main__":
    asyncio.run(main())
