"""CPU per request of the generator and the judge services, each in a process of its own.

Run: ``uv run python bench/service_cost.py`` (about a minute). A TGI stand-in and an OpenAI
stand-in answer at once (``--latency``, 0 s); the generator and the judge are served by
``harmrank serve`` as in production, configured as ``bench/platform_overhead.py`` configures
them. This process sends ``--requests`` calls with ``--in-flight`` at once to the generator's
``POST /v1/generate`` and to the judge's ``POST /v1/judge`` (one judge, one order: the worker's
calls) over ``bench/http_load.py``'s light client, and reads each service's CPU time (user and
system, from ``/proc``) before and after: CPU per request is the service's whole cost of a
call, its server side and its client side to the stand-in. Medians of ``--trials``, each after a
warm-up, interleaved between the two services. ``--pause`` waits before the trials (time to
attach py-spy to the printed process ids).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from http_load import Client
from processes import Process, Processes

KEY = "bench-key-not-secret"
MODEL = "small"
GENERATE: dict[str, object] = {
    "model": MODEL,
    "prompt": "bench prompt",
    "params": {"max_new_tokens": 16},
}
JUDGE: dict[str, object] = {
    "prompt_id": "p1",
    "prompt": "bench prompt",
    "responses": {"a": "first answer", "b": "second answer", "c": "third answer"},
    "judges": ["j"],
    "orders": 1,
}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.0, help="of the stand-ins, in s")
    parser.add_argument("--pause", type=float, default=0.0, help="s before the trials")
    return parser.parse_args()


def _start(procs: Processes, args: argparse.Namespace) -> dict[str, Process]:
    latency = ["--latency", str(args.latency)]
    tgi = procs.standin("tgi", "tgi", "--model-id", "org/small", *latency)
    openai = procs.standin("openai", "openai", "--key", KEY, *latency)
    room = max(64, args.in_flight)
    model = {"name": MODEL, "base_url": tgi.url, "prompt_template": "{prompt}\n"}
    judge = {"name": "j", "provider": "openai", "model": "gpt-m", "base_url": openai.url}
    generator_env = {
        "HARMRANK_GENERATOR_LOG_LEVEL": "warning",
        "HARMRANK_GENERATOR_MODELS": json.dumps([model | {"concurrency": room}]),
    }
    judge_env = {
        "HARMRANK_JUDGE_LOG_LEVEL": "warning",
        "HARMRANK_JUDGE_JUDGES": json.dumps([judge]),
        "HARMRANK_JUDGE_LIMITS": json.dumps({"openai": {"max_concurrency": room}}),
        "HARMRANK_JUDGE_OPENAI_API_KEY": KEY,
    }
    return {
        "generator": procs.serve("generator", generator_env),
        "judge": procs.serve("judge", judge_env),
    }


async def _send(url: str, path: str, body: bytes, count: int, in_flight: int) -> None:
    client = Client(url, max_connections=in_flight)
    headers = {"Content-Type": "application/json"}
    pending = iter(range(count))

    async def caller() -> None:
        for _ in pending:
            status, answer = await client.request("POST", path, headers, body)
            assert status == 200, answer[:300]

    try:
        await asyncio.gather(*(caller() for _ in range(in_flight)))
    finally:
        client.close()


async def _cpu_ms_per_request(
    service: Process, path: str, body: dict[str, object], args: argparse.Namespace
) -> float:
    assert service.url is not None
    raw = json.dumps(body).encode()
    await _send(service.url, path, raw, 200, args.in_flight)  # connections open, code warm
    before = service.cpu_seconds()
    await _send(service.url, path, raw, args.requests, args.in_flight)
    return 1000 * (service.cpu_seconds() - before) / int(args.requests)


async def _measure(services: dict[str, Process], args: argparse.Namespace) -> None:
    calls: dict[str, tuple[str, dict[str, object]]] = {
        "generator": ("/v1/generate", GENERATE),
        "judge": ("/v1/judge", JUDGE),
    }
    results: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(args.trials):
        for name, (path, body) in calls.items():
            results[name].append(await _cpu_ms_per_request(services[name], path, body, args))
    print(f"{args.requests} requests, {args.in_flight} in flight; service CPU per request:")
    for name, costs in results.items():
        trials = ", ".join(f"{c:.3f}" for c in costs)
        print(f"  {name:9s} {statistics.median(costs):.3f} ms  (trials {trials})")


def main() -> None:
    args = _arguments()
    procs = Processes(Path(tempfile.mkdtemp(prefix="harmrank-service-cost-")))
    try:
        services = _start(procs, args)
        if args.pause:
            pids = ", ".join(f"{n} {p.popen.pid}" for n, p in services.items())
            print(f"pids: {pids}; trials in {args.pause:.0f} s", flush=True)
            time.sleep(args.pause)
        asyncio.run(_measure(services, args))
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
