"""The gateway while it is abused: bad uploads at the body limit and 50 concurrent HTML reports.

Run: ``uv run python bench/hostile_load.py`` (a baseline and two phases of 15 s, about two
minutes on a quiet machine), or ``--seconds 5`` for a quick check. The gateway runs as
``harmrank serve gateway`` in a process of its own on a fresh database of the tests' PostgreSQL
server, seeded like the study (200 prompts, three models, three raters of every prompt). For
the whole of each phase, at once:

- ``--uploads`` clients (default 2) each send, one after another, a CSV at the body limit
  (10 MiB): a header and about 870,000 duplicate rows, every one a problem (422);
- ``--reports`` clients (default 50) each keep one HTML report of the dataset in flight
  (``GET /v1/datasets/study/report?format=html``, 1,000 resamples). In the phase ``same``
  they ask for the same report: the gateway computes it once, the others wait for that
  computation, and repeats are answered from the kept report. In the phase ``distinct`` each
  client asks for its own (its own seed): the gateway computes ``report_processes`` of them,
  lets ``report_queue`` wait, and refuses the rest at once with 503 ``reports_busy`` and
  ``Retry-After``. ``--kind`` runs one of them; both by default, ``same`` first;
- an open loop (``http_load.py``) sends ``/healthz`` and the usual reads (run list, dataset
  list and detail, a page of responses) at ``--rate`` requests/s each, timed from when each was
  due (no coordinated omission). The probes run in this process, the abusers in another: the
  abusers' own work on the client side (building uploads, reading reports) must not delay them.

A baseline phase first sends the same probes with no abuse, for a ratio (on a shared machine
the absolute figures say as much about the neighbours as about the gateway). Targets:
``/healthz`` p99 < 100 ms; every other route p99 < 200 ms; no answer >= 500 other than
the reports' 503 refusals, and the bad uploads all 422.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
# The repository's tests/ helpers, ahead of the `tests` package ppi-python installs.
import repo_tests

sys.path.insert(0, str(repo_tests.ROOT))
from sqlalchemy import select
from tests.gateway.run_results.helpers import _add_humans, seed_study_like

from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.models import Dataset, Prompt
from http_load import Outcome, Request, open_loop, percentile, run
from processes import TOKEN, serve_gateway

BODY_LIMIT = 10 * 1024 * 1024
REPORT = "/v1/datasets/study/report"
REPORT_PARAMS: dict[str, str | float] = {
    "annotators": "rater-1,rater-2,rater-3",
    "p": 0.9,
    "resamples": 1000,
}
PROMPTS = 200
KINDS = ("same", "distinct")
# What a phase's abusers were answered ("report 200": n, ...), and each bad upload's seconds.
Abuse = tuple[dict[str, int], list[float]]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=20.0, help="probe requests/s per kind")
    parser.add_argument("--uploads", type=int, default=2, help="clients sending bad uploads")
    parser.add_argument("--reports", type=int, default=50, help="clients asking for reports")
    parser.add_argument(
        "--kind",
        choices=[*KINDS, "both"],
        default="both",
        help="same: the report clients ask for one report; distinct: each for a report of its "
        "own (its own seed), so none is answered from another's computation or a kept report",
    )
    return parser.parse_args()


def bad_csv() -> bytes:
    """A header and duplicate rows up to just under the body limit (multipart overhead)."""
    row = b"same prompt\n"
    return b"text\n" + row * ((BODY_LIMIT - 4096) // len(row))


VALID = ([1, 2, 3], [0, 1, 2], [2, 0, 1], [0, 0, 0], [1, 0, 0], [3, 2, 1], [0, 2, 1])


async def seed(db_url: str) -> None:
    """The study-like dataset of the tests at 200 prompts, and three raters of every prompt."""
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    try:
        await seed_study_like(sessions, "study", prompts=PROMPTS)
        async with sessions.begin() as session:
            prompts = list(
                await session.scalars(
                    select(Prompt).join(Dataset).where(Dataset.name == "study").order_by(Prompt.id)
                )
            )
            ranks = {
                f"rater-{r}": {i: VALID[(i * (r + 2)) % len(VALID)] for i in range(PROMPTS)}
                for r in (1, 2, 3)
            }
            await _add_humans(session, prompts, ranks)
    finally:
        await engine.dispose()


async def uploads(url: str, stop: float, tally: Counter[str], seconds: list[float]) -> None:
    data = bad_csv()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as http:
        while time.monotonic() < stop:
            began = time.monotonic()
            files = {"file": ("bad.csv", data, "text/csv")}
            answer = await http.post("/v1/datasets", files=files, data={"name": "bad"})
            seconds.append(time.monotonic() - began)
            tally[f"upload {answer.status_code}"] += 1


async def reports(url: str, stop: float, tally: Counter[str], seed: int) -> None:
    params = REPORT_PARAMS | {"format": "html", "seed": seed}
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        while time.monotonic() < stop:
            try:
                answer = await http.get(REPORT, params=params)
            except httpx.TransportError as exc:
                # Counted, and asked again: after a 503 the client waits Retry-After (5 s),
                # the server's keep-alive time, so the server may close the connection as
                # the client sends on it (nothing was read: a client retries at once).
                tally[f"report {type(exc).__name__}"] += 1
                continue
            tally[f"report {answer.status_code}"] += 1
            if answer.status_code == 503:  # refused: wait as told, like a polite client
                await asyncio.sleep(float(answer.headers.get("retry-after", "1")))


def probes() -> list[Request]:
    return [
        Request("healthz", "GET", "/healthz"),
        Request("run list", "GET", "/v1/runs?limit=20"),
        Request("dataset list", "GET", "/v1/datasets?limit=20"),
        Request("dataset detail", "GET", "/v1/datasets/study"),
        Request("responses page", "GET", "/v1/datasets/study/responses?limit=50"),
    ]


def show(title: str, outcome: Outcome, lag: LoopLag) -> None:
    """Print the probes' figures, and the targets' verdicts."""
    print(title)
    for kind, values in outcome.latencies.items():
        print(
            f"  {kind:16s} n {len(values):5d}  p50 {percentile(values, 0.5):7.1f} ms  "
            f"p99 {percentile(values, 0.99):7.1f} ms  max {max(values, default=0) * 1000:7.1f} ms"
        )
    print(f"  probe errors: {dict(outcome.errors) or 'none'}")
    healthz = percentile(outcome.latencies["healthz"], 0.99)
    others = max(percentile(v, 0.99) for k, v in outcome.latencies.items() if k != "healthz")
    print(
        f"  targets: /healthz p99 {healthz:.1f} ms (< 100: {_met(healthz < 100)}); "
        f"worst other route p99 {others:.1f} ms (< 200: {_met(others < 200)})"
    )
    # The probes are timed by this process's event loop: a stall of its own would show as
    # the gateway's latency, so its longest one is printed beside them.
    print(f"  this benchmark's own event loop: longest stall {lag.longest * 1000:.1f} ms")


def _met(met: bool) -> str:
    return "met" if met else "NOT met"


def server_errors(tally: Counter[str], outcome: Outcome) -> None:
    """Every answer >= 500 by status, abusers' and probes' together, and the 500s apart."""
    statuses: Counter[int] = Counter()
    for label, count in [*tally.items(), *outcome.errors.items()]:
        status = label.rsplit(" ", 1)[-1]
        if status.isdigit() and int(status) >= 500:
            statuses[int(status)] += count
    refusals = sum(n for label, n in tally.items() if label == "report 503")
    print(f"  answers >= 500 by status: {dict(sorted(statuses.items())) or 'none'}")
    print(
        f"  of which 500: {statuses[500]} (target 0: {_met(statuses[500] == 0)}); "
        f"other than the reports' 503 refusals: {sum(statuses.values()) - refusals} "
        f"(target 0: {_met(sum(statuses.values()) == refusals)})"
    )


class LoopLag:
    """The longest this process's event loop was late to wake up (tick every 10 ms)."""

    TICK = 0.01

    def __init__(self) -> None:
        self.longest = 0.0

    async def watch(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(self.TICK)
            self.longest = max(self.longest, time.perf_counter() - began - self.TICK)

    @classmethod
    @contextlib.asynccontextmanager
    async def during(cls) -> AsyncIterator[LoopLag]:
        lag = cls()
        watching = asyncio.create_task(lag.watch())
        try:
            yield lag
        finally:
            watching.cancel()


async def baseline(url: str, args: argparse.Namespace) -> None:
    mix = probes()
    await open_loop(url, mix, args.rate * len(mix), 2.0)  # warm up
    async with LoopLag.during() as lag:
        outcome = await open_loop(url, mix, args.rate * len(mix), args.seconds)
    show("baseline, no abuse", outcome, lag)


def abuse(url: str, seconds: float, uploads_n: int, reports_n: int, kind: str) -> Abuse:
    """The abusers of a phase, run in a process of their own (see :func:`phase`)."""

    async def everyone() -> Abuse:
        stop = time.monotonic() + seconds
        tally: Counter[str] = Counter()
        upload_seconds: list[float] = []
        abusers = [uploads(url, stop, tally, upload_seconds) for _ in range(uploads_n)]
        # Seeds from 1: the same phase's report (seed 0) is kept, and would be answered at once.
        seeds = [i + 1 if kind == "distinct" else 0 for i in range(reports_n)]
        abusers += [reports(url, stop, tally, seed) for seed in seeds]
        await asyncio.gather(*abusers)
        return dict(tally), upload_seconds

    return asyncio.run(everyone())


async def phase(url: str, args: argparse.Namespace, kind: str, pool: ProcessPoolExecutor) -> None:
    # The abusers run in another process: building 10 MiB uploads and reading 50 clients'
    # HTML reports stalled this process's event loop for up to 150 ms, which the probes timed
    # here would have counted as the gateway's latency.
    loop = asyncio.get_running_loop()
    args_ = (url, args.seconds, args.uploads, args.reports, kind)
    abusing = loop.run_in_executor(pool, abuse, *args_)
    mix = probes()
    await asyncio.sleep(1.0)  # the abuse under way before the probes start
    async with LoopLag.during() as lag:
        outcome = await open_loop(url, mix, args.rate * len(mix), args.seconds - 1.0)
    counts, upload_seconds = await abusing
    tally = Counter(counts)
    show(f"{args.uploads} bad-upload clients, {args.reports} report clients ({kind})", outcome, lag)
    print(f"  answers to the abusers: {dict(sorted(tally.items()))}")
    server_errors(tally, outcome)
    if upload_seconds:
        ordered = sorted(upload_seconds)
        print(f"  bad upload (10 MiB, 422): median {ordered[len(ordered) // 2]:.2f} s each")


async def main() -> None:
    args = _arguments()
    async with serve_gateway("hostile") as (gateway, db_url):
        assert gateway.url is not None
        await seed(db_url)
        await baseline(gateway.url, args)
        # Forked now, before any phase is timed (a fork is not free), and reused by each.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            await asyncio.get_running_loop().run_in_executor(pool, time.sleep, 0)
            for kind in KINDS if args.kind == "both" else (args.kind,):
                await phase(gateway.url, args, kind, pool)


if __name__ == "__main__":
    run(main)
