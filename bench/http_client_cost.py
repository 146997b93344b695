"""CPU per request of harmrank's HTTP client alone (``create_client`` and its transport).

Run: ``uv run python bench/http_client_cost.py`` (about a minute). A TGI stand-in in a process of
its own answers ``POST /generate`` after 10 ms; this process sends ``--requests`` calls with
``--in-flight`` at once, and counts its own CPU time (user and system) per request, on asyncio's
loop and on uvloop, with httpx's own transport (httpcore, every connection kept alive) and with
:func:`harmrank.common.http.pooled_transport` (aiohttp's pool under httpx's API). Medians of
``--trials``, interleaved. Every hop between harmrank's processes pays this once on each side's
client."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from harmrank.common.http import create_client, pooled_transport
from processes import Processes

BODY = {"inputs": "x", "parameters": {"max_new_tokens": 4}}
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {
    "asyncio": None,
    "uvloop": uvloop.new_event_loop,
}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--trials", type=int, default=3)
    return parser.parse_args()


async def _cpu_ms_per_request(
    url: str, transport: httpx.AsyncBaseTransport, args: argparse.Namespace
) -> float:
    async with create_client(url, timeout=30, transport=transport) as client:
        slots = asyncio.Semaphore(args.in_flight)

        async def one() -> None:
            async with slots:
                answer = await client.post("/generate", json=BODY)
                assert answer.status_code == 200, answer.text

        await asyncio.gather(*(one() for _ in range(200)))  # connections open, code warm
        started = time.process_time()
        await asyncio.gather(*(one() for _ in range(args.requests)))
        return 1000 * (time.process_time() - started) / int(args.requests)


def _transports(in_flight: int) -> dict[str, httpx.AsyncBaseTransport]:
    every_connection_kept = httpx.Limits(max_connections=in_flight, max_keepalive_connections=None)
    return {
        "httpcore": httpx.AsyncHTTPTransport(limits=every_connection_kept),
        "pooled_transport": pooled_transport(in_flight),
    }


def main() -> None:
    args = _arguments()
    procs = Processes(Path(tempfile.mkdtemp(prefix="harmrank-client-cost-")))
    standin = procs.standin("tgi", "tgi", "--latency", "0.01")
    assert standin.url is not None
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(args.trials):
            for loop, factory in LOOPS.items():
                for pool, transport in _transports(args.in_flight).items():
                    with asyncio.Runner(loop_factory=factory) as runner:
                        cost = runner.run(_cpu_ms_per_request(standin.url, transport, args))
                    results.setdefault((loop, pool), []).append(cost)
    finally:
        procs.stop_all()
    print(f"{args.requests} requests, {args.in_flight} in flight; client CPU per request:")
    for (loop, pool), costs in results.items():
        trials = ", ".join(f"{c:.2f}" for c in costs)
        print(f"  {loop:8s} {pool:17s} {statistics.median(costs):5.2f} ms  (trials {trials})")


if __name__ == "__main__":
    main()
