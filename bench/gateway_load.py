"""The gateway under open-loop load: 200 mixed requests/s against PostgreSQL, on loopback.

Run: ``uv run python bench/gateway_load.py`` (20 s per phase), or ``--seconds 5`` for a quick
check; ``--workers N`` serves with N gateway processes (``harmrank serve gateway --workers``).
The gateway runs as ``harmrank serve gateway`` in processes of its own (so the load generator
does not share its event loop), on a fresh database of the tests' PostgreSQL server
(``HARMRANK_TEST_POSTGRES_URL``), seeded with a 200-prompt dataset, responses of three models
and a planned run of 1,200 tasks.

The load is open-loop (``http_load.py``): request i is due at ``start + i / rate`` whatever
became of the ones before, and its latency counts from when it was due, so a slow server
cannot slow the arrivals and hide its own queueing (coordinated omission); every answer of 400
or more and every failed request is an error. The mix: run list and run status, dataset list
and detail, a page of responses, and dataset uploads (5%), each upload under a new name. A
baseline phase sends the same arrivals to ``/healthz`` first, for a ratio. Target: p99 < 50 ms,
no errors. Figures per kind of request follow the totals, and the gateway's CPU time per
request (all its processes, from /proc) says how much of the machine it took.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
# The repository's tests/ helpers, ahead of the `tests` package ppi-python installs.
import repo_tests

sys.path.insert(0, str(repo_tests.ROOT))
from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.models import Dataset, Model, Prompt, Response
from http_load import Outcome, Request, multipart, open_loop, percentile, run
from processes import TOKEN, serve_gateway

MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
MEASURED = 1_000_000
"""Request numbers of the measured phase start here, so its uploads' names are new."""


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--workers", type=int, default=1, help="gateway processes")
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


def _upload(i: int) -> tuple[str, bytes]:
    return multipart(
        {"name": f"load-{i}"}, "p.jsonl", "application/x-ndjson", _jsonl(10, f"load {i}")
    )


def _mix(run_id: int) -> list[Request]:
    # 20 slots: 5% uploads, the rest reads.
    return [
        *[Request("run list", "GET", "/v1/runs?limit=20")] * 4,
        *[Request("run page", "GET", f"/v1/runs/{run_id}")] * 4,
        *[Request("dataset list", "GET", "/v1/datasets?limit=20")] * 3,
        *[Request("dataset detail", "GET", "/v1/datasets/seed")] * 3,
        *[Request("responses page", "GET", "/v1/datasets/seed/responses?limit=50")] * 5,
        Request("upload", "POST", "/v1/datasets", {"Authorization": f"Bearer {TOKEN}"}, _upload),
    ]


def _report(name: str, outcome: Outcome, seconds: float) -> dict[str, float]:
    latencies = outcome.all_latencies()
    figures = {q: percentile(latencies, q) for q in (0.5, 0.95, 0.99)}
    print(
        f"{name:16s} {outcome.sent / seconds:6.1f} req/s  p50 {figures[0.5]:6.1f} ms  "
        f"p95 {figures[0.95]:6.1f} ms  p99 {figures[0.99]:6.1f} ms  max "
        f"{max(latencies, default=0) * 1000:7.1f} ms  errors {sum(outcome.errors.values())}"
    )
    for error, count in sorted(outcome.errors.items()):
        print(f"  error {error}: {count}")
    return {"p50": figures[0.5], "p95": figures[0.95], "p99": figures[0.99]}


def _per_kind(outcome: Outcome) -> None:
    for kind, values in outcome.latencies.items():
        print(
            f"  {kind:16s} n {len(values):5d}  p50 {percentile(values, 0.5):6.1f} ms  "
            f"p99 {percentile(values, 0.99):6.1f} ms"
        )


async def main() -> None:
    args = _arguments()
    async with serve_gateway("load", "--workers", str(args.workers)) as (gateway, db_url):
        assert gateway.url is not None
        run_id = await _seed(gateway.url, db_url)
        mix = _mix(run_id)
        await open_loop(gateway.url, mix, args.rate, 2)  # warm up
        health = [Request("healthz", "GET", "/healthz")]
        base = await open_loop(gateway.url, health, args.rate, args.seconds)
        cpu_before = gateway.cpu_seconds()
        load = await open_loop(gateway.url, mix, args.rate, args.seconds, first=MEASURED)
        cpu = gateway.cpu_seconds() - cpu_before
        rss = gateway.peak_rss_mb()
    print(
        f"open loop, {args.rate:.0f} requests/s for {args.seconds:.0f} s per phase, "
        f"{args.workers} gateway process(es)"
    )
    baseline = _report("/healthz", base, args.seconds)
    mixed = _report("mixed", load, args.seconds)
    _per_kind(load)
    print(f"p99 ratio mixed / baseline: {mixed['p99'] / baseline['p99']:.1f}x")
    print(f"gateway CPU per mixed request: {cpu / max(load.sent, 1) * 1000:.2f} ms")
    print(f"gateway peak RSS: {rss:.1f} MB")


if __name__ == "__main__":
    run(main)
