"""Shared pieces of the runs tests: a toy dataset, run specs, fake executors, a worker driver."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.common.contracts.generation import GenerationResult
from harmrank.common.http import create_client
from harmrank.gateway.db.models import Dataset, Prompt
from harmrank.gateway.db.run_models import Stage
from harmrank.gateway.runs import service
from harmrank.gateway.runs.executors import Executors, ScoreExecutor
from harmrank.gateway.runs.schemas import RunCreate, RunOut
from harmrank.gateway.runs.tasks import Backoff
from harmrank.gateway.runs.work import GenerateWork, JudgeWork, Judgment
from harmrank.gateway.runs.worker import run_worker
from harmrank.metrics.app import create_app as create_metrics

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2025, 6, 24, 12, 0, tzinfo=UTC)
FINAL = ("done", "done_with_failures", "failed", "cancelled")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def seed_dataset(
    sessions: Sessions, name: str = "toy", prompts: int = 6, categories: Sequence[str] = ("a", "b")
) -> None:
    async with sessions.begin() as session:
        dataset = Dataset(name=name, source="made up for tests")
        session.add(dataset)
        await session.flush()
        session.add_all(
            Prompt(
                dataset_id=dataset.id,
                external_id=f"p{i}",
                text=f"harmless prompt {i}?",
                normalised_text=f"harmless prompt {i}?",
                category=categories[i % len(categories)],
            )
            for i in range(prompts)
        )


def spec(**changes: Any) -> RunCreate:
    """Two models, one judge with two orders, six prompts: 12 generate, 12 judge, 1 score."""
    body: dict[str, Any] = {
        "prompts": {"dataset": "toy"},
        "models": [{"name": "small-a", "params": {"max_new_tokens": 64}}, {"name": "small-b"}],
        "judges": [{"name": "judge-x", "orders": 2}],
        "metrics": {"p": 0.9, "resamples": 10, "seed": 1},
        "max_attempts": 3,
    }
    return RunCreate.model_validate(body | changes)


async def create(sessions: Sessions, body: RunCreate, key: str | None = None) -> RunOut:
    run, _ = await service.create_run(sessions, body, key)
    return run


def nonzero(run: RunOut, stage: str) -> dict[str, int]:
    """The run's task counts of one stage, states with no task left out."""
    return {state: n for state, n in run.progress[Stage(stage)].items() if n}


async def get(sessions: Sessions, run_id: int) -> RunOut:
    async with sessions() as session:
        return await service.get_run(session, run_id)


@dataclass
class FakeGenerate:
    """A generator in-process: a fixed text per model and prompt; scripted errors first."""

    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    """Keyed "model/prompt id": raised in turn by the first calls for that pair."""
    calls: list[GenerateWork] = field(default_factory=list)
    gate: asyncio.Event | None = None
    """When set, calls wait for it: a task that is "running" for as long as a test wants."""

    async def execute(self, work: GenerateWork) -> GenerationResult:
        self.calls.append(work)
        if self.gate is not None:
            await self.gate.wait()
        pending = self.failures.get(f"{work.model}/{work.prompt_id}")
        if pending:
            raise pending.pop(0)
        return GenerationResult(
            model=work.model,
            prompt_id=work.prompt_id,
            text=f"{work.model} declines {work.prompt_id}",
            finish_reason="eos_token",
            latency_seconds=0.0,
            backend="tgi",
            mode="generate",
            params=work.params,
        )


@dataclass
class FakeJudge:
    """A judge in-process: a valid ranking seeded by judge, prompt and order."""

    calls: list[JudgeWork] = field(default_factory=list)

    async def execute(self, work: JudgeWork) -> Judgment:
        self.calls.append(work)
        rng = random.Random(f"{work.judge}/{work.prompt_id}/{work.order_index}")
        n = len(work.responses)
        ranks = [0] * n
        for rank, model in enumerate(rng.sample(range(n), rng.randint(0, n)), start=1):
            ranks[model] = rank
        presentation = {"order": list(work.responses), "repetition": work.order_index}
        return Judgment(ranks, raw_text=str(ranks), presentation=presentation)


def metrics_client() -> httpx.AsyncClient:
    """The real metrics service, in-process: the score task's calls go through its HTTP API."""
    transport = httpx.ASGITransport(create_metrics())
    return create_client("http://metrics", timeout=60.0, transport=transport)


@dataclass
class Fakes:
    """Stand-ins for the generator and the judge; the metrics service is the real one."""

    generate: FakeGenerate = field(default_factory=FakeGenerate)
    judge: FakeJudge = field(default_factory=FakeJudge)
    metrics: httpx.AsyncClient = field(default_factory=metrics_client)

    def executors(self) -> Executors:
        return Executors(self.generate, self.judge, ScoreExecutor(self.metrics))


async def work_until_settled(
    sessions: Sessions,
    executors: Executors,
    run_id: int,
    *,
    concurrency: int = 3,
    claim_batch: int = 4,
    lease_seconds: float = 5.0,
    within: float = 60.0,
) -> RunOut:
    """Run the worker until the run reaches a final status; answer the run then."""
    stop = asyncio.Event()

    async def watch() -> RunOut:
        while True:
            run = await get(sessions, run_id)
            if run.status in FINAL:
                stop.set()
                return run
            await asyncio.sleep(0.05)

    async with asyncio.timeout(within), asyncio.TaskGroup() as group:
        group.create_task(
            run_worker(
                sessions,
                executors,
                worker_id="test",
                concurrency=concurrency,
                claim_batch=claim_batch,
                poll_interval=0.02,
                lease_seconds=lease_seconds,
                stop_event=stop,
                backoff=Backoff(base_seconds=0.01, max_seconds=0.05),
            )
        )
        watcher = group.create_task(watch())
    return watcher.result()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Wait until ``check()`` holds, polling; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        for _ in itertools.count():
            if await check():
                return
            await asyncio.sleep(0.02)
