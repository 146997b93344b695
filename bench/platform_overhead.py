"""The platform's own cost per LLM call: a whole run through the real services and a worker.

Run: ``uv run python bench/platform_overhead.py`` (1,000 prompts × 3 models plus one judge,
4,000 LLM calls a run; three trials of each configuration, interleaved), or ``--prompts 200
--trials 1`` for a quick check. Every part is a process of its own: a TGI stand-in serving the
three small models, an OpenAI stand-in for the judge (each answering after ``latency``), the
generator, the judge, the metrics service, the gateway (``harmrank serve``) and one
``harmrank worker`` with ``in flight`` tasks at once, on a fresh database of the PostgreSQL
server of the tests (``HARMRANK_TEST_POSTGRES_URL``) per trial.

The window runs from the run's creation (the request that creates it) to the moment its last
generate or judge task finished (its ``finished_at``, on the same machine's clock; the score
task after it is not an LLM call). The bench notices the end by polling every 0.2 s; the CPU
figures span to that poll. Printed beside the rate: how long the run's creation took (the
plan), how long after it the first task was claimed, and the tail: from the last task claimed
to the last finished, and the rate from the first claim to the last finish (the run without
its planning and the wait for a worker's poll; the targets are on the whole window); and where
an LLM call's time goes: the time a call holds a worker's slot (in flight / that rate) beside
the means of the generator's and the judge's own histograms, for their whole request and their
call upstream (what is above the stand-ins' latency is the platform's). Printed per
configuration, medians over the trials: LLM calls/s against the ideal (in flight / latency),
the CPU time per LLM call of each harmrank process and their sum, of the database backends
serving the run (``pg_stat_activity`` of its database) and of the stand-ins, apart, and each
process's peak resident memory. Targets (issue #21): at 100 ms, 16 and 64 in flight, at least
90% of the ideal and at most 3 ms of harmrank CPU per LLM call.

Inspect AI side by side (issue #21): when ``bench/inspect_env.sh`` has made ``.bench/inspect``
(or ``--inspect PYTHON`` names another environment's Python), each trial of each configuration
runs the same workload through Inspect too, right after harmrank's, on fresh stand-ins of the
same kind (``bench/inspect_baseline.py``, ``bench/inspect_side.py``), and a side-by-side table
with the issue's verdicts follows: harmrank at least 3x Inspect's calls/s at 0 ms x 16, at least
2x lower CPU per call. Without the environment it says Inspect was skipped, and why.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).parent))
# The repository's tests/ helpers, ahead of the `tests` package ppi-python installs.
import repo_tests

sys.path.insert(0, str(repo_tests.ROOT))
from tests.conftest import throwaway_postgres_database

import inspect_side
from inspect_side import HarmrankFigures, InspectTrial
from processes import (
    HARMRANK,
    TOKEN,
    Process,
    Processes,
    cpu_seconds,
    free_port,
    stack_gateway_env,
    wait_listening,
)

MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
JUDGE = "gpt4o"
KEY = "sk-bench-openai-key"
LLM_STAGES = ("generate", "judge")
FINISHED = ("done", "failed", "reused", "cancelled")
POLL_SECONDS = 0.2
STARTUP_SECONDS = 300
# The processes on an LLM call's path; the gateway's start (migrations) under cProfile would
# take longer than the start-up wait on a loaded machine.
PROFILED = ("worker", "generator", "judge")


@dataclass(frozen=True)
class Config:
    latency: float
    in_flight: int

    @property
    def ideal(self) -> float | None:
        """Calls/s if every call took exactly the stand-in's latency and nothing else."""
        return self.in_flight / self.latency if self.latency else None

    def __str__(self) -> str:
        return f"{self.latency * 1000:.0f} ms latency, {self.in_flight} in flight"


@dataclass
class Trial:
    calls: int
    seconds: float
    failed: int
    cpu: dict[str, float]  # seconds in the window, per harmrank process
    database: float
    standins: float
    rss: dict[str, float] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)  # the run's failure groups
    attempts: int = 0
    planned: float = 0.0  # s: the creating request (the plan is written in it)
    first_claim: float = 0.0  # s from the creation to the first task claimed
    tail: float = 0.0  # s from the last task claimed to the last finished
    hops: dict[str, float] = field(default_factory=dict)  # mean ms of a call's parts (HOPS)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def per_call_ms(self, seconds: float) -> float:
        return 1000 * seconds / self.calls


@dataclass
class Stack:
    gateway: str
    harmrank: list[Process]
    standins: list[Process]


def _configs(value: str) -> list[Config]:
    """``0.1:16,0.1:64,0:16``: latency in s, colon, tasks in flight."""
    try:
        pairs = [item.split(":") for item in value.split(",")]
        return [Config(float(latency), int(in_flight)) for latency, in_flight in pairs]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected latency:in_flight,... not {value!r}") from exc


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument(
        "--configs",
        type=_configs,
        default=_configs("0.1:16,0.1:64,0:16"),
        help="latency_s:in_flight pairs, comma-separated (default %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="give up on a run after (s)")
    parser.add_argument(
        "--claim-batch",
        type=int,
        help="the worker's --claim-batch (default: the worker's own default)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the worker, generator and judge under cProfile, writing <name>.prof here",
    )
    parser.add_argument(
        "--inspect",
        type=Path,
        help="the Python of an environment with Inspect AI, to run the same workload through "
        f"it side by side (default {inspect_side.DEFAULT_PYTHON.relative_to(repo_tests.ROOT)}, "
        "when it exists)",
    )
    return parser.parse_args()


def _worker(profile: Path | None) -> list[str]:
    """``harmrank``, under cProfile when profiling (the worker ends cleanly on SIGTERM, so
    cProfile writes its file)."""
    if profile is None:
        return [HARMRANK]
    return [sys.executable, "-m", "cProfile", "-o", str(profile / "worker.prof"), HARMRANK]


def _server(procs: Processes, profile: Path | None) -> Callable[[str, dict[str, str]], Process]:
    def serve(service: str, env: dict[str, str]) -> Process:
        port = free_port()
        command = [HARMRANK, "serve", service, "--port", str(port)]
        if profile is not None and service in PROFILED:
            out = str(profile / f"{service}.prof")
            command = [sys.executable, str(Path(__file__).with_name("profiled_serve.py")), out]
            command += [service, str(port)]
        process = procs.start(service, command, env, None)
        # Imports under cProfile on a machine other sessions load take more than a minute.
        process.url = f"http://127.0.0.1:{port}"
        wait_listening(process, timeout=STARTUP_SECONDS)
        return process

    return serve


def _standins(procs: Processes, config: Config) -> tuple[Process, Process]:
    """The TGI stand-in serving the three models and the OpenAI stand-in for the judge."""
    latency = ["--latency", str(config.latency)]
    tgi = procs.standin("tgi", "tgi", "--model-id", "org/small", *latency)
    openai = procs.standin("openai", "openai", "--key", KEY, *latency)
    return tgi, openai


def _start(
    procs: Processes,
    db_url: str,
    config: Config,
    profile: Path | None,
    claim_batch: int | None = None,
) -> Stack:
    tgi, openai = _standins(procs, config)
    # The services' own limits above the worker's: the worker alone decides what is in flight.
    room = max(64, config.in_flight)
    models = [
        {"name": m, "base_url": tgi.url, "prompt_template": "{prompt}\n", "concurrency": room}
        for m in MODELS
    ]
    judges = [{"name": JUDGE, "provider": "openai", "model": "gpt-m", "base_url": openai.url}]
    serve = _server(procs, profile)
    generator = serve(
        "generator",
        {
            "HARMRANK_GENERATOR_LOG_LEVEL": "warning",
            "HARMRANK_GENERATOR_MODELS": json.dumps(models),
        },
    )
    judge = serve(
        "judge",
        {
            "HARMRANK_JUDGE_LOG_LEVEL": "warning",
            "HARMRANK_JUDGE_JUDGES": json.dumps(judges),
            "HARMRANK_JUDGE_LIMITS": json.dumps({"openai": {"max_concurrency": room}}),
            "HARMRANK_JUDGE_OPENAI_API_KEY": KEY,
        },
    )
    metrics = serve("metrics", {"HARMRANK_METRICS_LOG_LEVEL": "warning"})
    env = stack_gateway_env(db_url, generator, judge, metrics)
    gateway = serve("gateway", {**env, "HARMRANK_GATEWAY_MIGRATE_ON_START": "true"})
    command = [*_worker(profile), "worker", "--concurrency", str(config.in_flight)]
    if claim_batch is not None:
        command += ["--claim-batch", str(claim_batch)]
    worker = procs.start("worker", command, {**env, "HARMRANK_GATEWAY_WORKER_ID": "w0"}, None)
    assert gateway.url is not None
    return Stack(gateway.url, [generator, judge, metrics, gateway, worker], [tgi, openai])


async def _query(db_url: str, query: str) -> list[Any]:
    engine = create_async_engine(db_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.connect() as connection:
            return list(await connection.execute(text(query)))
    finally:
        await engine.dispose()


async def _until_polling(db_url: str, stack: Stack) -> None:
    """Wait until the worker claims (finding nothing yet): a deployed worker is running when a
    run is created. Until 2026-12-05 the window included the worker's own start-up, its
    imports, about 0.8 s of each run's 5-9 s at the bench's defaults."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query LIKE 'UPDATE tasks SET state%'"
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while not (await _query(db_url, query))[0][0]:
        worker = next(p for p in stack.harmrank if p.name == "worker")
        if worker.popen.poll() is not None:
            raise SystemExit(f"the worker exited ({worker.popen.returncode}); see its log")
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker made no claim in {STARTUP_SECONDS} s")
        await asyncio.sleep(0.05)


async def _backend_pids(db_url: str) -> set[int]:
    """The PostgreSQL backends connected to the run's database now."""
    query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    return {int(row[0]) for row in await _query(db_url, query + "AND pid <> pg_backend_pid()")}


async def _attempts(db_url: str) -> int:
    """Attempts of the LLM tasks in all: more than one a task means calls made again."""
    query = "SELECT coalesce(sum(attempts), 0) FROM tasks WHERE stage IN ('generate', 'judge')"
    return int((await _query(db_url, query))[0][0])


async def _task_times(db_url: str) -> tuple[float, float, float]:
    """When the run's first LLM task was claimed, its last claimed, and its last finished
    (seconds since the epoch, by the worker's clock: this machine's)."""
    query = (
        "SELECT extract(epoch FROM min(started_at)), extract(epoch FROM max(started_at)), "
        "extract(epoch FROM max(finished_at)) FROM tasks WHERE stage IN ('generate', 'judge')"
    )
    first, last_claim, last = (await _query(db_url, query))[0]
    return float(first), float(last_claim), float(last)


def _tally(run: dict[str, Any]) -> tuple[int, int, int]:
    """LLM tasks (generate, judge): in all, finished, failed."""
    counts = [run["progress"].get(stage, {}) for stage in LLM_STAGES]
    total = sum(sum(states.values()) for states in counts)
    finished = sum(states.get(s, 0) for states in counts for s in FINISHED)
    return total, finished, sum(states.get("failed", 0) for states in counts)


def _prompts_jsonl(prompts: int) -> bytes:
    """The run's dataset: synthetic prompts, the same for harmrank and Inspect."""
    lines = [json.dumps({"id": f"p{i}", "text": f"benchmark prompt {i}?"}) for i in range(prompts)]
    return "\n".join(lines).encode()


async def _upload_and_spec(http: httpx.AsyncClient, prompts: int) -> dict[str, Any]:
    files = {"file": ("p.jsonl", _prompts_jsonl(prompts), "application/x-ndjson")}
    uploaded = await http.post("/v1/datasets", files=files, data={"name": "overhead"})
    assert uploaded.status_code == 201, uploaded.text
    return {
        "prompts": {"dataset": "overhead"},
        "models": [{"name": m, "params": {"max_new_tokens": 16, "seed": 1}} for m in MODELS],
        "judges": [{"name": JUDGE, "orders": 1}],
        "metrics": {"p": 0.9, "resamples": 100},
    }


async def _trial(stack: Stack, db_url: str, args: argparse.Namespace) -> Trial:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=stack.gateway, headers=headers, timeout=60) as http:
        spec = await _upload_and_spec(http, args.prompts)
        pids_before = await _backend_pids(db_url)
        before = _cpu(stack, pids_before)
        started = time.time()
        created = await http.post("/v1/runs", json=spec)
        planned = time.time() - started
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        deadline = time.monotonic() + args.timeout
        failures: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            run = (await http.get(f"/v1/runs/{run_id}")).json()
            failures = run.get("failures") or failures  # retried tasks leave no trace at the end
            total, finished, failed = _tally(run)
            if total and finished == total:
                break
            await asyncio.sleep(POLL_SECONDS)
        else:
            raise SystemExit(f"the run's LLM tasks did not finish in {args.timeout} s")
        after = _cpu(stack, pids_before | await _backend_pids(db_url))
        first, last_claim, last = await _task_times(db_url)
    cpu = {p.name: after[p.name] - before.get(p.name, 0.0) for p in stack.harmrank}
    return Trial(
        calls=total,
        seconds=last - started,
        failed=failed,
        cpu=cpu,
        database=after["database"] - before["database"],
        standins=after["standins"] - before["standins"],
        rss={p.name: p.peak_rss_mb() for p in stack.harmrank},
        failures=failures,
        attempts=await _attempts(db_url),
        planned=planned,
        first_claim=first - started,
        tail=last - last_claim,
        hops=_hops(stack),
    )


HOPS = {
    "generator, its model server call": (
        "generator",
        "harmrank_generator_request_duration_seconds",
        None,
    ),
    "generator, the whole request": (
        "generator",
        "harmrank_http_request_duration_seconds",
        "/v1/generate",
    ),
    "judge, its provider call": ("judge", "harmrank_judge_call_duration_seconds", None),
    "judge, the whole request": ("judge", "harmrank_http_request_duration_seconds", "/v1/judge"),
}
"""Where an LLM call's time goes, from the services' own histograms (means over the trial)."""


def _hops(stack: Stack) -> dict[str, float]:
    """The mean of each of ``HOPS`` in ms, read off the services' /metrics after the run (the
    services start afresh for each trial: their histograms hold this trial's calls)."""
    pages = {
        p.name: list(text_string_to_metric_families(httpx.get(f"{p.url}/metrics").text))
        for p in stack.harmrank
        if p.name in ("generator", "judge")
    }
    found = {}
    for hop, (service, metric, route) in HOPS.items():
        mean = _mean_ms(pages[service], metric, route)
        if mean is not None:
            found[hop] = mean
    return found


def _mean_ms(families: list[Metric], metric: str, route: str | None) -> float | None:
    """A histogram's mean over all its labels (those of ``route`` only, when given)."""
    total = count = 0.0
    for sample in (sample for family in families for sample in family.samples):
        if route is not None and sample.labels.get("route") != route:
            continue
        if sample.name == f"{metric}_sum":
            total += sample.value
        elif sample.name == f"{metric}_count":
            count += sample.value
    return 1000 * total / count if count else None


def _cpu(stack: Stack, backends: set[int]) -> dict[str, float]:
    """CPU seconds so far: each harmrank process, the stand-ins together, the backends together
    (a backend that exited before it was read again is lost; the pool keeps them alive)."""
    found = {p.name: p.cpu_seconds() for p in stack.harmrank}
    found["standins"] = sum(p.cpu_seconds() for p in stack.standins)
    found["database"] = sum(cpu_seconds(pid) for pid in backends)
    return found


async def _one(config: Config, args: argparse.Namespace) -> Trial:
    procs = Processes(Path(tempfile.mkdtemp(prefix="harmrank-overhead-")))
    async with throwaway_postgres_database() as db_url:
        try:
            stack = _start(procs, db_url, config, args.profile, args.claim_batch)
            await _until_polling(db_url, stack)
            return await _trial(stack, db_url, args)
        finally:
            procs.stop_all()


def _inspect_one(config: Config, args: argparse.Namespace, python: Path) -> InspectTrial:
    """The same run through Inspect AI, on fresh stand-ins started as harmrank's are."""
    procs = Processes(Path(tempfile.mkdtemp(prefix="inspect-overhead-")))
    try:
        tgi, openai = _standins(procs, config)
        prompts = procs.logs / "p.jsonl"
        prompts.write_bytes(_prompts_jsonl(args.prompts))
        options = ["--prompts-file", str(prompts), "--tgi", str(tgi.url)]
        options += ["--judge", str(openai.url), "--judge-model", "gpt-m", "--key", KEY]
        options += ["--models", ",".join(MODELS), "--in-flight", str(config.in_flight)]
        options += ["--log-dir", str(procs.logs / "inspect-logs")]
        return inspect_side.run_driver(python, options, tgi, [tgi, openai], args.timeout)
    finally:
        procs.stop_all()


def _harmrank_figures(config: Config, trials: list[Trial]) -> HarmrankFigures:
    return HarmrankFigures(
        latency=config.latency,
        in_flight=config.in_flight,
        rate=_median([t.rate for t in trials]),
        cpu_ms=_median([t.per_call_ms(sum(t.cpu.values())) for t in trials]),
        database_ms=_median([t.per_call_ms(t.database) for t in trials]),
        standins_ms=_median([t.per_call_ms(t.standins) for t in trials]),
        rss_mb=max(mb for t in trials for mb in t.rss.values()),
        rss_total_mb=max(sum(t.rss.values()) for t in trials),
        trial_rates=tuple(t.rate for t in trials),
    )


def _report_side_by_side(config: Config, ours: list[Trial], theirs: list[InspectTrial]) -> None:
    rates = ", ".join(f"{t.rate:.1f}" for t in theirs)
    cpu = _fmt([t.per_call_ms(t.cpu) for t in theirs])
    print(f"\n{config}, side by side with Inspect AI (medians; Inspect's trials {rates} calls/s,")
    print(f"  {cpu} ms CPU per call)")
    for line in inspect_side.side_by_side(_harmrank_figures(config, ours), theirs):
        print(line)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _report(config: Config, trials: list[Trial]) -> None:
    rate = _median([t.rate for t in trials])
    ideal = config.ideal
    share = f" = {100 * rate / ideal:.0f}% of the ideal {ideal:.0f}/s" if ideal else ""
    print(f"\n{config}: {trials[0].calls} LLM calls a run, {len(trials)} trials")
    print(f"  calls/s: {rate:.1f}{share} (trials {', '.join(f'{t.rate:.1f}' for t in trials)})")
    parts = [
        ("planning the run", [t.planned for t in trials]),
        ("to the first claim", [t.first_claim for t in trials]),
        ("the tail, last claim to last finish", [t.tail for t in trials]),
    ]
    window = _median([t.seconds for t in trials])
    steady = _median([t.calls / (t.seconds - t.first_claim) for t in trials])
    steady_share = f" = {100 * steady / ideal:.0f}% of the ideal" if ideal else ""
    print(f"  calls/s from the first claim to the last finish: {steady:.1f}{steady_share}")
    print(
        f"  window {window:.2f} s, of which (medians, s): "
        + "; ".join(f"{name} {_median(values):.2f}" for name, values in parts)
    )
    if any(t.attempts != t.calls for t in trials):
        print(f"  task attempts: {[t.attempts for t in trials]} for {trials[0].calls} tasks")
    if any(t.failed for t in trials):
        print(f"  failed tasks: {[t.failed for t in trials]}")
    for group in (g for t in trials for g in t.failures):
        where = group["model"] or group["judge"]
        print(f"  failing ({group['stage']} {where}): {group['last_error']}")
    if trials[0].hops:
        in_slot = 1000 * config.in_flight / steady
        print(
            f"  an LLM call's time (ms, medians of the means; the stand-ins answer after "
            f"{config.latency * 1000:.0f}): in a worker's slot {in_slot:.1f} (in flight / "
            "the rate from the first claim)"
        )
        for hop in trials[0].hops:
            print(f"    {hop:34s} {_median([t.hops.get(hop, 0.0) for t in trials]):6.1f}")
    print("  CPU per LLM call (ms), median:")
    for name in trials[0].cpu:
        print(f"    {name:10s} {_median([t.per_call_ms(t.cpu[name]) for t in trials]):6.2f}")
    totals = [t.per_call_ms(sum(t.cpu.values())) for t in trials]
    print(f"    {'harmrank':10s} {_median(totals):6.2f}  (trials {_fmt(totals)})")
    print(f"    {'database':10s} {_median([t.per_call_ms(t.database) for t in trials]):6.2f}")
    print(f"    {'stand-ins':10s} {_median([t.per_call_ms(t.standins) for t in trials]):6.2f}")
    peaks = {name: max(t.rss[name] for t in trials) for name in trials[0].rss}
    print("  peak RSS (MB): " + ", ".join(f"{n} {mb:.0f}" for n, mb in peaks.items()))


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


async def main() -> None:
    args = _arguments()
    # Deployed code runs from compiled bytecode: a process compiling every module it imports
    # (PYTHONDONTWRITEBYTECODE, which some shells set) starts slowly and pays for it mid-run too.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    results: dict[Config, list[Trial]] = {config: [] for config in args.configs}
    inspect, found = inspect_side.find_python(args.inspect)
    inspect_results: dict[Config, list[InspectTrial]] = {config: [] for config in args.configs}
    print(f"Inspect AI {found}" if inspect else f"Inspect AI side by side skipped: {found}")
    print(f"load average at start: {_load()}")
    for trial in range(args.trials):  # interleaved: a burst of load spreads over every config
        for config in args.configs:
            results[config].append(await _one(config, args))
            print(f"trial {trial + 1}, {config}: {results[config][-1].rate:.1f} calls/s")
            if inspect:  # right after harmrank's trial: the same state of the machine
                inspect_results[config].append(_inspect_one(config, args, inspect))
                rate = inspect_results[config][-1].rate
                print(f"trial {trial + 1}, {config}, Inspect AI: {rate:.1f} calls/s")
    for config, trials in results.items():
        _report(config, trials)
    if inspect:
        print(f"\n{inspect_side.settings_line(next(iter(inspect_results.values())))}")
        for config, trials in results.items():
            _report_side_by_side(config, trials, inspect_results[config])
    print(f"\nload average at the end: {_load()}")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    asyncio.run(main())
