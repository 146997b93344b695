"""A whole harmrank stack for fault tests: stand-ins, services, gateway and worker processes.

The TGI and provider stand-ins, the generator, the judge and the gateway's API are uvicorn
servers in threads of the test process (real HTTP on loopback); workers are real
``harmrank worker`` subprocesses, so a test can SIGKILL one. Every timeout, lease and backoff
is short, so a whole run of a handful of prompts takes seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy import func, select
from starlette.types import ASGIApp
from tests.conftest import free_port
from tests.generator.helpers import model
from tests.generator.tgi_standin import Standin, StandinState
from tests.judge.conftest import KEYS, judge_config, judge_settings
from tests.judge.standins import Policy, ProviderName, StandIn, prefer_position

from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.migrate import upgrade_async
from harmrank.gateway.db.models import Ranking, Response
from harmrank.gateway.db.run_models import Stage, Task, TaskState
from harmrank.gateway.settings import GatewaySettings
from harmrank.generator.app import create_app as create_generator
from harmrank.generator.settings import GeneratorSettings, RetrySettings
from harmrank.judge.app import create_app as create_judge
from harmrank.metrics.app import create_app as create_metrics

TOKEN = "fault-test-write-token-2b7d"
MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
JUDGES: tuple[tuple[str, ProviderName], ...] = (("gpt4o", "openai"), ("claude", "anthropic"))
HARMRANK = Path(sys.executable).with_name("harmrank")
FAST_GENERATOR_RETRY = RetrySettings(
    max_attempts=4, base_delay_seconds=0.02, max_delay_seconds=0.1, generation_error_attempts=2
)
# Short leases so a killed worker's task is claimable again within seconds.
FAST_QUEUE: dict[str, Any] = {
    "lease_seconds": 1.5,
    "poll_interval_seconds": 0.05,
    "retry_base_seconds": 0.05,
    "retry_max_seconds": 0.3,
    "connect_timeout_seconds": 2.0,
    "downstream_timeout_seconds": 30.0,
}


class ThreadServer:
    """An ASGI app served by uvicorn in a thread; stoppable, and restartable on its port."""

    def __init__(
        self, app: ASGIApp, port: int | None = None, *, capture_logs: bool = False
    ) -> None:
        self.app = app
        self.port = port or free_port()
        # Capturing: uvicorn leaves logging alone, so its loggers propagate to the root logger
        # (and pytest's caplog), access log included.
        self.capture_logs = capture_logs
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadServer:
        options: dict[str, Any] = {"log_config": None} if self.capture_logs else {}
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="debug" if self.capture_logs else "warning",
            lifespan="on",
            **options,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        self.server, self.thread = server, thread
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=15)
        self.server = self.thread = None


@dataclass
class Servers:
    """Every server a test started, stopped at the end in reverse order."""

    started: list[ThreadServer] = field(default_factory=list)
    capture_logs: bool = False

    def serve(self, app: ASGIApp, port: int | None = None) -> ThreadServer:
        server = ThreadServer(app, port, capture_logs=self.capture_logs).start()
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()


@dataclass
class Downstreams:
    """The generator and judge services with the stand-ins behind them, and the metrics
    service."""

    generator_url: str
    judge_url: str
    tgi: list[Standin]
    judges: list[StandIn]
    metrics_url: str

    def generation_calls(self) -> int:
        return sum(s.state.request_count for s in self.tgi)


def start_downstreams(
    servers: Servers,
    *,
    wrap_tgi: Any = None,
    judge_policy: Policy | None = None,
    tgi_latency: float = 0.0,
    model_timeout: float = 10.0,
    keys: Mapping[ProviderName, str] | None = None,
) -> Downstreams:
    """TGI stand-ins (one per model) behind the generator; provider stand-ins behind the judge.

    ``wrap_tgi`` wraps each stand-in's ASGI app (failure injection); ``keys`` are the keys the
    judge service is given (the stand-ins always expect ``tests.judge.conftest.KEYS``).
    """
    tgi = [Standin(StandinState(model_id=f"org/{m}", latency=tgi_latency)) for m in MODELS]
    registry = []
    for name, standin in zip(MODELS, tgi, strict=True):
        app = wrap_tgi(standin.app) if wrap_tgi is not None else standin.app
        url = servers.serve(app).url
        registry.append(
            model(
                name,
                url,
                mode="generate",
                prompt_template="{prompt}\n",
                timeout_seconds=model_timeout,
                connect_timeout_seconds=1.0,
                concurrency=8,
            )
        )
    generator = servers.serve(
        create_generator(GeneratorSettings(models=registry, retry=FAST_GENERATOR_RETRY))
    )
    providers = [
        StandIn(provider, KEYS[provider], policy=judge_policy or prefer_position(i))
        for i, (_, provider) in enumerate(JUDGES)
    ]
    configs = []
    for (name, provider), provider_standin in zip(JUDGES, providers, strict=True):
        key = (keys or {}).get(provider)
        options: dict[str, Any] = {"max_attempts": 3}
        if key is not None:
            options["api_key"] = SecretStr(key)  # a judge's own key wins over the provider's
        configs.append(
            judge_config(name, provider, servers.serve(provider_standin.app()).url, **options)
        )
    judge = servers.serve(create_judge(judge_settings(*configs)))
    metrics = servers.serve(create_metrics())
    return Downstreams(generator.url, judge.url, tgi, providers, metrics.url)


def gateway_settings(
    db_url: str, downstreams: Downstreams, *, worker_loops: int = 0, **overrides: Any
) -> GatewaySettings:
    values: dict[str, Any] = {
        "database_url": SecretStr(db_url),
        "generator_url": downstreams.generator_url,
        "judge_url": downstreams.judge_url,
        "metrics_url": downstreams.metrics_url,
        "worker_loops": worker_loops,
        "api_tokens": [SecretStr(TOKEN)],
        **FAST_QUEUE,
        **overrides,
    }
    return GatewaySettings(**values)


def start_gateway(
    servers: Servers, settings: GatewaySettings, port: int | None = None
) -> ThreadServer:
    return servers.serve(create_gateway(settings), port)


def worker_env(db_url: str, downstreams: Downstreams, name: str) -> dict[str, str]:
    """The environment of a ``harmrank worker`` process for this stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMRANK_")}
    env |= {
        "HARMRANK_GATEWAY_DATABASE_URL": db_url,
        "HARMRANK_GATEWAY_GENERATOR_URL": downstreams.generator_url,
        "HARMRANK_GATEWAY_METRICS_URL": downstreams.metrics_url,
        "HARMRANK_GATEWAY_JUDGE_URL": downstreams.judge_url,
        "HARMRANK_GATEWAY_WORKER_ID": name,
        "PYTHONUNBUFFERED": "1",
    }
    env |= {f"HARMRANK_GATEWAY_{k.upper()}": str(v) for k, v in FAST_QUEUE.items()}
    return env


class WorkerProcess:
    """``harmrank worker`` as a real subprocess; its output goes to a log file."""

    def __init__(self, env: Mapping[str, str], log: Path, concurrency: int = 3) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(HARMRANK), "worker", "--concurrency", str(concurrency)],
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no lease released, as when a machine dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def migrate(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade_async(engine)
    finally:
        await engine.dispose()


def prompts_jsonl(count: int) -> bytes:
    lines = [f'{{"id": "q{i}", "text": "calm question number {i}?"}}' for i in range(count)]
    return "\n".join(lines).encode()


def run_spec(dataset: str, *, orders: int = 1, resamples: int = 20) -> dict[str, Any]:
    return {
        "prompts": {"dataset": dataset},
        "models": [{"name": m, "params": {"max_new_tokens": 8, "seed": 3}} for m in MODELS],
        "judges": [{"name": name, "orders": orders} for name, _ in JUDGES],
        "metrics": {"p": 0.9, "resamples": resamples},
        "max_attempts": 8,
    }


def client(base_url: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)


async def start_run(
    http: httpx.AsyncClient, dataset: str, prompts: int, **spec: Any
) -> dict[str, Any]:
    files = {"file": ("prompts.jsonl", prompts_jsonl(prompts), "application/x-ndjson")}
    uploaded = await http.post("/v1/datasets", files=files, data={"name": dataset})
    assert uploaded.status_code == 201, uploaded.text
    created = await http.post("/v1/runs", json=run_spec(dataset, **spec))
    assert created.status_code == 201, created.text
    run: dict[str, Any] = created.json()
    return run


async def run_state(http: httpx.AsyncClient, run_id: int) -> dict[str, Any]:
    run: dict[str, Any] = (await http.get(f"/v1/runs/{run_id}")).json()
    return run


async def wait_for(
    http: httpx.AsyncClient, run_id: int, done: Any, *, within: float = 60
) -> dict[str, Any]:
    """Poll the run until ``done(run)`` holds; connection errors count as 'not yet'."""
    deadline = time.monotonic() + within
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            run = await run_state(http, run_id)
        except httpx.TransportError:
            run = {}
        if run and done(run):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not get there in {within} s: {run}")


def finished(run: dict[str, Any]) -> bool:
    return run["status"] in {"done", "done_with_failures", "failed", "cancelled"} and bool(
        run["has_report"]
    )


def count(run: dict[str, Any], stage: str, *states: str) -> int:
    return sum(run["progress"][stage][state] for state in states)


@dataclass(frozen=True)
class Stored:
    """What the database holds about a run: result rows and task states."""

    responses: dict[tuple[int, int, str], int]
    rankings: dict[tuple[int, int, str], int]
    tasks: list[tuple[str, str, int, str | None, str | None]]

    def states(self, stage: Stage) -> dict[str, int]:
        found: dict[str, int] = {}
        for task_stage, state, *_ in self.tasks:
            if task_stage == stage:
                found[state] = found.get(state, 0) + 1
        return found

    def states_running(self) -> int:
        return sum(1 for _, state, *_ in self.tasks if state == TaskState.RUNNING)

    def max_attempts(self) -> int:
        return max(attempts for _, _, attempts, _, _ in self.tasks)


async def stored(db_url: str, run_id: int) -> Stored:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            responses = await session.execute(
                select(
                    Response.prompt_id, Response.model_id, Response.generation_key, func.count()
                ).group_by(Response.prompt_id, Response.model_id, Response.generation_key)
            )
            rankings = await session.execute(
                select(
                    Ranking.annotator_id, Ranking.prompt_id, Ranking.presentation_key, func.count()
                ).group_by(Ranking.annotator_id, Ranking.prompt_id, Ranking.presentation_key)
            )
            tasks = await session.execute(
                select(Task.stage, Task.state, Task.attempts, Task.error_type, Task.error_message)
                .where(Task.run_id == run_id)
                .order_by(Task.id)
            )
            return Stored(
                {(p, m, k): int(n) for p, m, k, n in responses},
                {(a, p, k): int(n) for a, p, k, n in rankings},
                [(str(s), str(st), int(a), e, msg) for s, st, a, e, msg in tasks],
            )
    finally:
        await engine.dispose()


def assert_exactly_once(found: Stored, prompts: int, judgments: int) -> None:
    """Every response and ranking of the run is stored, each exactly once."""
    assert len(found.responses) == prompts * len(MODELS)
    assert set(found.responses.values()) == {1}
    assert len(found.rankings) == judgments
    assert set(found.rankings.values()) == {1}


def every_state(found: Stored, stage: Stage, states: Iterable[TaskState]) -> bool:
    allowed = {s.value for s in states}
    return all(state in allowed for task_stage, state, *_ in found.tasks if task_stage == stage)
