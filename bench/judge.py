"""Judge fan-out under provider rate limits: achieved request rate vs the limit, and 429s.

Run: ``uv run python bench/judge.py`` (1,000 ranking requests, ~100 s at 600 requests/min),
or ``uv run python bench/judge.py --requests 100`` for a ~10 s check.

Three stand-in providers (OpenAI, Anthropic, Gemini wire formats, from ``tests/judge``) answer
after ``--latency`` seconds and enforce ``--rpm`` requests per sliding minute, answering 429
with ``retry-after`` above it, as the real services do. Every ranking request fans out to the
three judges through the production ``JudgeService`` (clients, limiter, retries unchanged),
in process, so the figures measure the limiter rather than our own HTTP front. Targets: each
provider's achieved rate within 5% of its limit, and zero 429s provoked.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).parent))
# The repository's tests/ helpers, ahead of the `tests` package ppi-python installs.
import repo_tests

sys.path.insert(0, str(repo_tests.ROOT))
from tests.conftest import LiveServer
from tests.judge.standins import ProviderName, StandIn, prefer_position

from harmrank.common.contracts.judging import JudgeRequest
from harmrank.judge.service import JudgeService
from harmrank.judge.settings import JudgeConfig, JudgeSettings, ProviderLimits
from harmrank.judge.telemetry import JudgeTelemetry

PROVIDERS: tuple[ProviderName, ...] = ("openai", "anthropic", "gemini")
KEY = "bench-key-not-secret"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="ranking requests (each x3)")
    parser.add_argument("--rpm", type=int, default=600, help="requests/min per provider")
    parser.add_argument("--latency", type=float, default=0.1, help="stand-in latency in s")
    parser.add_argument("--concurrency", type=int, default=32, help="max in flight per provider")
    return parser.parse_args()


def _start(args: argparse.Namespace) -> tuple[dict[ProviderName, StandIn], list[LiveServer]]:
    standins: dict[ProviderName, StandIn] = {}
    servers = []
    for provider in PROVIDERS:
        standin = StandIn(
            provider,
            KEY,
            policy=prefer_position(0),
            latency=args.latency,
            requests_per_minute=args.rpm,
        )
        server = LiveServer(standin.app())
        server.start()
        standins[provider] = standin
        servers.append(server)
    return standins, servers


def _settings(args: argparse.Namespace, servers: list[LiveServer]) -> JudgeSettings:
    judges = [
        JudgeConfig(name=p, provider=p, model=f"{p}-bench", base_url=s.url, api_key=SecretStr(KEY))
        for p, s in zip(PROVIDERS, servers, strict=True)
    ]
    limits = ProviderLimits(requests_per_minute=args.rpm, max_concurrency=args.concurrency)
    return JudgeSettings(judges=judges, limits=dict.fromkeys(PROVIDERS, limits))


def _request(i: int) -> JudgeRequest:
    responses = {m: f"response {m} to prompt {i}" for m in ("mistral", "mpt", "stablelm")}
    return JudgeRequest(prompt_id=f"bench-{i}", prompt=f"prompt {i}", responses=responses)


async def _run(args: argparse.Namespace, settings: JudgeSettings) -> tuple[float, int]:
    service = JudgeService(settings, JudgeTelemetry(CollectorRegistry()))
    started = time.perf_counter()
    try:
        responses = await asyncio.gather(
            *(service.judge(_request(i)) for i in range(args.requests))
        )
    finally:
        await service.aclose()
    failed = sum(
        1 for r in responses for res in r.results for j in res.judgments if j.ranks is None
    )
    return time.perf_counter() - started, failed


def _report(args: argparse.Namespace, standins: dict[ProviderName, StandIn], wall: float) -> bool:
    ok = True
    print(f"{args.requests} ranking requests x {len(PROVIDERS)} judges in {wall:.1f} s")
    for provider, standin in standins.items():
        times = standin.received
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        rate = (len(times) - 1) / span * 60 if span > 0 else float("nan")
        within = abs(rate - args.rpm) / args.rpm <= 0.05
        ok = ok and within and standin.throttled == 0
        print(
            f"  {provider:<10} {len(times):>5} calls  achieved {rate:7.1f}/min vs limit "
            f"{args.rpm}/min ({rate / args.rpm:6.1%})  429s provoked: {standin.throttled}"
        )
    return ok


def main() -> int:
    args = _arguments()
    standins, servers = _start(args)
    try:
        wall, failed = asyncio.run(_run(args, _settings(args, servers)))
    finally:
        for server in servers:
            server.stop()
    ok = _report(args, standins, wall) and failed == 0
    print(f"judgments without ranks: {failed}; targets {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
