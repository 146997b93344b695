"""The generator's overhead: throughput through it against the TGI stand-in called directly.

Run: ``uv run python bench/generator.py`` (about 30 s).

A TGI stand-in (``tests/generator/tgi_standin.py``, TGI's wire format) answers every
``/generate`` after ``--latency`` seconds (50 ms), in its own uvicorn process; the generator
service (``harmrank serve generator``, its production client, concurrency bound and retries)
runs in another, with one model pointing at the stand-in. This process is the load generator:
``--concurrency`` (64) closed-loop callers over one httpx client send ``--requests`` calls,
first straight to the stand-in's ``POST /generate``, then through the generator's
``POST /v1/generate``. Figures, median of ``--runs``: requests/s each way and their ratio
(target: through the generator at least 90% of direct), and the generator's added latency per
request: what the caller saw minus the stand-in call the generator timed itself
(``latency_seconds`` of its answer), median and p99. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
# The repository's tests/ helpers, ahead of the `tests` package ppi-python installs.
import repo_tests

sys.path.insert(0, str(repo_tests.ROOT))
from tests.conftest import free_port
from tests.generator.tgi_standin import Standin, StandinState

MODEL = "bench-model"
PARAMS = {"max_new_tokens": 16, "seed": 7}
Call = Callable[[httpx.AsyncClient, int], Awaitable[float | None]]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="per run and way")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05, help="of the stand-in, in s")
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args()


def serve_standin(port: int, latency: float) -> None:
    """The stand-in process: TGI's wire format, no concurrency limit below the load."""
    import uvicorn

    state = StandinState(latency=latency, max_concurrent_requests=100_000)
    uvicorn.run(Standin(state).app, host="127.0.0.1", port=port, log_level="warning")


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited with status {process.returncode}")
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def start(args: argparse.Namespace) -> tuple[list[subprocess.Popen[bytes]], str, str]:
    """The stand-in and the generator, each in its own process; their base URLs."""
    standin_port, generator_port = free_port(), free_port()
    standin = subprocess.Popen(
        [sys.executable, __file__, "--serve-standin", str(standin_port), str(args.latency)]
    )
    standin_url = f"http://127.0.0.1:{standin_port}"
    _wait_ready(f"{standin_url}/health", standin)
    model = {"name": MODEL, "base_url": standin_url, "concurrency": 4 * args.concurrency}
    env = os.environ | {
        "HARMRANK_GENERATOR_MODELS": json.dumps([model]),
        "HARMRANK_GENERATOR_PORT": str(generator_port),
        "HARMRANK_GENERATOR_LOG_LEVEL": "warning",
    }
    generator = subprocess.Popen(
        [sys.executable, "-m", "harmrank.cli.main", "serve", "generator"], env=env
    )
    generator_url = f"http://127.0.0.1:{generator_port}"
    _wait_ready(f"{generator_url}/readyz", generator)
    return [generator, standin], standin_url, generator_url


async def direct(client: httpx.AsyncClient, index: int) -> float | None:
    body = {"inputs": f"bench prompt {index}", "parameters": PARAMS}
    response = await client.post("/generate", json=body)
    response.raise_for_status()
    return None


async def through_generator(client: httpx.AsyncClient, index: int) -> float | None:
    """The generator's own timing of its call to the stand-in."""
    body: dict[str, Any] = {"model": MODEL, "prompt": f"bench prompt {index}", "params": PARAMS}
    response = await client.post("/v1/generate", json=body)
    response.raise_for_status()
    return float(response.json()["latency_seconds"])


async def load(url: str, call: Call, requests: int, concurrency: int) -> tuple[float, list[float]]:
    """(requests/s, added seconds per request) for ``requests`` calls, ``concurrency`` at once."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    added: list[float] = []
    counter = iter(range(2 * concurrency))  # the warm-up: connections made, code paths hot

    async def caller(client: httpx.AsyncClient) -> None:
        for index in counter:
            started = time.perf_counter()
            inner = await call(client, index)
            if inner is not None:
                added.append(time.perf_counter() - started - inner)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await asyncio.gather(*(caller(client) for _ in range(concurrency)))
        counter, added[:] = iter(range(requests)), []
        started = time.perf_counter()
        await asyncio.gather(*(caller(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return requests / seconds, added


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(standin: str, generator: str, args: argparse.Namespace) -> None:
    direct_rates, generator_rates, medians, p99s = [], [], [], []
    for run in range(args.runs):
        rate, _ = await load(standin, direct, args.requests, args.concurrency)
        direct_rates.append(rate)
        rate, added = await load(generator, through_generator, args.requests, args.concurrency)
        generator_rates.append(rate)
        medians.append(statistics.median(added))
        p99s.append(percentile(added, 0.99))
        print(
            f"  run {run + 1}: direct {direct_rates[-1]:.0f}/s, through the generator "
            f"{generator_rates[-1]:.0f}/s, added p50 {medians[-1] * 1000:.1f} ms, "
            f"p99 {p99s[-1] * 1000:.1f} ms"
        )
    d, g = statistics.median(direct_rates), statistics.median(generator_rates)
    ideal = args.concurrency / args.latency
    print(
        f"{args.concurrency} concurrent, stand-in latency {args.latency * 1000:.0f} ms "
        f"(ideal {ideal:.0f}/s), median of {args.runs}:"
    )
    print(f"  direct to the stand-in:  {d:.0f} requests/s")
    print(f"  through the generator:   {g:.0f} requests/s = {g / d:.0%} of direct (target >= 90%)")
    print(
        f"  added latency per request: median {statistics.median(medians) * 1000:.1f} ms, "
        f"p99 {statistics.median(p99s) * 1000:.1f} ms"
    )


def main() -> None:
    if sys.argv[1:2] == ["--serve-standin"]:
        return serve_standin(int(sys.argv[2]), float(sys.argv[3]))
    args = _arguments()
    processes, standin, generator = start(args)
    try:
        asyncio.run(measure(standin, generator, args))
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    main()
