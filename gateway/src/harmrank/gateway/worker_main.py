"""``harmrank worker``: work tasks against the gateway's database until SIGINT/SIGTERM.

Any number of worker processes (on any number of hosts) may share one PostgreSQL database:
tasks are claimed with ``FOR UPDATE SKIP LOCKED`` under a lease. On SQLite, run one process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from harmrank.common.heap import tune_garbage_collector
from harmrank.common.http import RetryPolicy, create_client, pooled_transport
from harmrank.common.logs import configure_logging
from harmrank.common.loop import run
from harmrank.gateway.db.engine import create_engine, database_url, session_factory
from harmrank.gateway.db.migrate import check_current_async
from harmrank.gateway.runs import announce
from harmrank.gateway.runs.executors import (
    Executors,
    GenerateExecutor,
    JudgeExecutor,
    ScoreExecutor,
    TaskBudget,
)
from harmrank.gateway.runs.tasks import Backoff
from harmrank.gateway.runs.worker import default_claim_batch, run_worker
from harmrank.gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)
DATABASE_PATIENCE_SECONDS = 120.0
"""How long a starting worker waits for its database to answer before it gives up."""


def main(concurrency: int, claim_batch: int | None = None) -> None:
    """Work up to ``concurrency`` tasks at once until SIGINT or SIGTERM, then finish and settle
    those in flight. ``claim_batch`` overrides the setting of that name."""
    settings = GatewaySettings()
    configure_logging("worker", settings.log_level)
    if claim_batch is not None:
        settings = settings.model_copy(update={"claim_batch": claim_batch})
    run(serve(settings, concurrency))


async def serve(
    settings: GatewaySettings, concurrency: int, stop: asyncio.Event | None = None
) -> None:
    stop = stop or _stop_on_signals()
    # No pre-ping: a round trip per transaction, and a transaction of the worker's that fails
    # on a dropped connection is retried anyway (a claim at the next poll, a settle by lease).
    engine = create_engine(database_url(settings), pre_ping=False)
    try:
        if not await _migrated(engine, DATABASE_PATIENCE_SECONDS):
            raise SystemExit("the database is not at the newest migration; migrate it first")
        tune_garbage_collector()
        await serve_loops(settings, engine, concurrency, stop)
    finally:
        await engine.dispose()


async def _migrated(engine: AsyncEngine, patience: float) -> bool:
    """Whether the database is at the newest migration, once it answers: a worker that starts
    while PostgreSQL starts or restarts (a deployment coming up, a failover) waits for it, as
    the running workers ride such a restart out, instead of exiting."""
    deadline = time.monotonic() + patience
    backoff = Backoff(base_seconds=0.5, max_seconds=5.0)
    attempt = 0
    while True:
        attempt += 1
        try:
            return await check_current_async(engine)
        except (OSError, DBAPIError) as exc:
            delay = backoff.delay(attempt)
            if time.monotonic() + delay > deadline:
                raise
            logger.warning(
                "the database does not answer yet (%s); trying again in %.1f s", exc, delay
            )
            await asyncio.sleep(delay)


async def serve_loops(
    settings: GatewaySettings, engine: AsyncEngine, concurrency: int, stop: asyncio.Event
) -> None:
    """Work up to ``concurrency`` tasks at once on ``engine`` until ``stop`` is set (the
    gateway runs this in-process, with ``worker_loops`` as the concurrency). The engine, not
    a session factory: listening for announced tasks takes a connection of its own."""
    async with executors_for(settings, concurrency) as executors:
        await run_worker(
            session_factory(engine),
            executors,
            worker_id=settings.worker_id,
            concurrency=concurrency,
            claim_batch=settings.claim_batch or default_claim_batch(concurrency),
            poll_interval=settings.poll_interval_seconds,
            lease_seconds=settings.lease_seconds,
            stop_event=stop,
            backoff=Backoff(settings.retry_base_seconds, settings.retry_max_seconds),
            listen=announce.listener(engine),
        )


@asynccontextmanager
async def executors_for(settings: GatewaySettings, concurrency: int) -> AsyncIterator[Executors]:
    """The executors, with one long-lived client per downstream, closed on exit, each with a
    connection kept alive for every task in flight (``concurrency``)."""
    # One retry layer per hop: this client retries only a connection that could not be made
    # (nothing reached the service, nothing was paid for). The services retry their upstreams
    # within the task's call budget, and the task queue retries whole tasks.
    policy = RetryPolicy(
        max_attempts=settings.call_attempts,
        retry_statuses=frozenset(),
        retry_any_server_error=False,
        retry_on_timeouts=False,
        retry_on_network_errors=False,
    )
    budget = TaskBudget(settings.task_call_budget, settings.attempt_call_budget)
    # LLM calls take minutes, not httpx's default 5 s; connecting must still be quick.
    timeout = httpx.Timeout(
        settings.downstream_timeout_seconds, connect=settings.connect_timeout_seconds
    )
    generator, judge, metrics = (
        create_client(
            str(url), timeout=timeout, policy=policy, transport=pooled_transport(concurrency)
        )
        for url in (settings.generator_url, settings.judge_url, settings.metrics_url)
    )
    async with generator, judge, metrics:
        yield Executors(
            GenerateExecutor(generator, budget),
            JudgeExecutor(judge, budget),
            ScoreExecutor(metrics),
            budget,
        )


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
