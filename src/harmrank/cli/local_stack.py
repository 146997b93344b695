"""``harmrank serve`` with no service: the four services on one machine, in one process.

Each service is its own uvicorn server on its own port, all on one event loop. One process
rather than four children because it makes the guarantees the local mode needs simple: one
signal handler stops everything in order (the gateway first, so its worker finishes the tasks
it holds while the generator and judge still answer, then the others), no child can be
orphaned, and the code is imported once. The cost, one core and one GIL for all four, does
not matter on a laptop: the services mostly wait on HTTP, and scoring runs in a thread.

The gateway gets what the local mode needs whatever its environment says: migrations at start,
an in-process worker, and ``generator_url``/``judge_url``/``metrics_url`` pointing at the local
ports, so it talks to them over the same HTTP clients it uses in a cluster (a run's score task
sends its rankings to the local metrics service). The database is the embedded
SQLite file unless ``HARMRANK_DATABASE_URL`` (or ``HARMRANK_GATEWAY_DATABASE_URL``) says else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from pydantic import AnyHttpUrl
from rich.console import Console
from rich.table import Table
from starlette.applications import Starlette

from harmrank.common.loop import run as run_loop
from harmrank.common.settings import ServiceSettings
from harmrank.gateway.db.engine import database_url, redact_url
from harmrank.gateway.settings import GatewaySettings

logger = logging.getLogger("harmrank.serve")
STARTUP_SECONDS = 60.0
WHAT = {
    "gateway": "public API, database, task worker",
    "generator": "small models (TGI or OpenAI-compatible servers)",
    "judge": "LLM judges of harm",
    "metrics": "statistics over HTTP",
}


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals alone: the stack handles them for all four."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Member:
    name: str
    app: Starlette
    host: str
    port: int
    what: str = ""
    server: _Server | None = None
    task: asyncio.Task[None] | None = None
    failed: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://{client_host(self.host)}:{self.port}"


def client_host(host: str) -> str:
    """Where a client on this machine reaches a server listening on ``host``."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class StackOptions:
    host: str | None = None
    worker_loops: int = 2
    log_level: str = "info"
    access_log: bool = False


def _address(settings: ServiceSettings, options: StackOptions) -> tuple[str, int]:
    return options.host or settings.host, settings.port


def build_members(options: StackOptions, services: ServiceOverrides | None = None) -> list[Member]:
    """The four apps, the gateway last (it is started last and stopped first)."""
    from harmrank.gateway.app import create_app as create_gateway
    from harmrank.generator.app import create_app as create_generator
    from harmrank.generator.settings import GeneratorSettings
    from harmrank.judge.app import create_app as create_judge
    from harmrank.judge.settings import JudgeSettings
    from harmrank.metrics.app import create_app as create_metrics
    from harmrank.metrics.settings import MetricsSettings

    given = services or ServiceOverrides()
    generator = GeneratorSettings(**given.generator)
    judge = JudgeSettings.load(**given.judge)
    metrics = MetricsSettings(**given.metrics)
    members = [
        Member("generator", create_generator(generator), *_address(generator, options)),
        Member("judge", create_judge(judge), *_address(judge, options)),
        Member("metrics", create_metrics(metrics), *_address(metrics, options)),
    ]
    urls = {m.name: m.url for m in members}
    gateway_settings = local_gateway_settings(
        GatewaySettings(**given.gateway), urls, options.worker_loops
    )
    members.append(
        Member("gateway", create_gateway(gateway_settings), *_address(gateway_settings, options))
    )
    return members


@dataclass(frozen=True)
class ServiceOverrides:
    """Settings given in code, over the environment's (the demo's backends and database)."""

    generator: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    gateway: dict[str, Any] = field(default_factory=dict)


def local_gateway_settings(
    settings: GatewaySettings, urls: dict[str, str], worker_loops: int
) -> GatewaySettings:
    """The gateway's settings with the local mode's: ``urls`` by service name."""
    return settings.model_copy(
        update={
            "migrate_on_start": True,
            "worker_loops": worker_loops,
            "generator_url": AnyHttpUrl(urls["generator"]),
            "judge_url": AnyHttpUrl(urls["judge"]),
            "metrics_url": AnyHttpUrl(urls["metrics"]),
        }
    )


def services_table(members: list[Member], database: str, worker_loops: int) -> Table:
    table = Table(title="harmrank local stack", title_justify="left")
    for column in ("service", "URL", "API docs", "what"):
        table.add_column(column)
    for member in members:
        docs = f"{member.url}/docs" if member.name in WHAT else "-"
        table.add_row(member.name, member.url, docs, member.what or WHAT[member.name])
    table.caption = f"database: {database}; gateway tasks at once: {worker_loops}; Ctrl-C stops all"
    table.caption_justify = "left"
    return table


async def _serve(member: Member, options: StackOptions) -> None:
    config = uvicorn.Config(
        member.app,
        host=member.host,
        port=member.port,
        lifespan="on",
        log_level=options.log_level,
        access_log=options.access_log,
    )
    member.server = _Server(config)
    try:
        await member.server.serve()
    except SystemExit:
        # uvicorn exits when it cannot bind or a lifespan fails to start; it logged why.
        member.failed = True


async def _start(member: Member, options: StackOptions) -> bool:
    """Start one server and wait until it listens; False when it could not start."""
    member.task = asyncio.create_task(_serve(member, options), name=f"serve-{member.name}")
    await asyncio.sleep(0)
    async with asyncio.timeout(STARTUP_SECONDS):
        while member.server is None or not member.server.started:
            if member.task.done():
                return False
            await asyncio.sleep(0.02)
    return True


async def _stop(member: Member) -> None:
    if member.server is not None:
        member.server.should_exit = True
    if member.task is not None:
        await member.task


def _on_signals(stop: asyncio.Event, members: list[Member]) -> None:
    loop = asyncio.get_running_loop()

    def handle() -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait for open connections or tasks
            for member in members:
                if member.server is not None:
                    member.server.force_exit = True
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handle)


Job = Callable[[], Coroutine[Any, Any, int]]


async def run_stack(
    members: list[Member], options: StackOptions, console: Console, job: Job | None = None
) -> int:
    """Serve every member until SIGINT/SIGTERM or until one stops; 0 after a clean stop.

    With a ``job``, it runs once every member listens; when it returns, the stack stops with
    its status (a job that should leave the stack running waits for cancellation)."""
    stop = asyncio.Event()
    _on_signals(stop, members)
    started: list[Member] = []
    try:
        for member in members:
            if stop.is_set() or not await _start(member, options):
                return 1 if not stop.is_set() else 0
            started.append(member)
        console.print(services_table(members, _database(members), options.worker_loops))
        show_warnings(await _warnings(members), console)
        finished = asyncio.create_task(job()) if job is not None else None
        await _until_stop_or_exit(stop, started, finished)
        if finished is not None and finished.done() and not finished.cancelled():
            code: int = finished.result()
            return code
        return 1 if any(m.failed or _exited(m) for m in started) and not stop.is_set() else 0
    finally:
        for member in reversed(started):
            await _stop(member)
        console.print("[dim]harmrank local stack stopped[/dim]")


async def _warnings(members: list[Member]) -> list[str]:
    from harmrank.cli.startup import startup_warnings

    settings = {m.name: m.app.state.settings for m in members if m.name in ("generator", "judge")}
    return await startup_warnings(settings.get("generator"), settings.get("judge"))


def show_warnings(warnings: list[str], console: Console) -> None:
    for warning in warnings:
        console.print(f"[yellow]warning[/yellow]: {warning}", soft_wrap=True)


def _exited(member: Member) -> bool:
    return member.task is not None and member.task.done()


async def _until_stop_or_exit(
    stop: asyncio.Event, members: list[Member], job: asyncio.Task[int] | None
) -> None:
    waiter = asyncio.create_task(stop.wait())
    tasks: set[asyncio.Task[Any]] = {waiter, *(m.task for m in members if m.task is not None)}
    if job is not None:
        tasks.add(job)
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if job is not None and not job.done():
        job.cancel()


def _database(members: list[Member]) -> str:
    gateway = next(m for m in members if m.name == "gateway")
    settings: GatewaySettings = gateway.app.state.settings
    return redact_url(database_url(settings))


def serve_all(options: StackOptions, console: Console) -> int:
    """Build the four services and serve them until Ctrl-C; the process's exit status."""
    members = build_members(options)
    return run_loop(run_stack(members, options, console))
