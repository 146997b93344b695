"""``harmrank demo`` and ``harmrank serve --demo``: the real stack with demonstration backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console

from harmrank.cli.local_stack import Member, StackOptions, build_members, run_stack
from harmrank.demo.content import DEMO_MODELS
from harmrank.demo.stack import LOOPBACK, backend_members, demo_overrides

# Tasks the gateway works at once in the demo: the demo servers answer at once, so more
# loops only queue on the two cores.
DEMO_WORKER_LOOPS = 4


def _members(options: StackOptions, database: Path, free_ports: bool) -> list[Member]:
    backends = backend_members(DEMO_MODELS)
    overrides = demo_overrides(backends, DEMO_MODELS, database, free_ports)
    return [*backends, *build_members(options, overrides)]


def _gateway_url(members: list[Member]) -> str:
    return next(m.url for m in members if m.name == "gateway")


def where_to_look(out: Path, console: Console) -> None:
    console.print()
    console.print("[bold]Where to look[/bold]")
    console.print(f"  report:          {out / 'report.html'} (and report.json)")
    console.print(f"  demo annotators: {out / 'annotators-agreement.json'}")
    console.print(
        "  API docs:        run `uv run harmrank serve --demo`, open http://127.0.0.1:8000/docs"
    )
    console.print("  annotation page: with it running, `uv run harmrank annotation invite demo`")
    console.print("                   prints sign-in links to http://127.0.0.1:8000/annotate/")
    console.print("  real models:     examples/study/run.yaml and the README's quickstart")


def run_demo(out: Path, console: Console) -> int:
    """Start everything on free loopback ports, run the demonstration, stop; the exit status."""
    from harmrank.demo.flow import demo

    out.mkdir(parents=True, exist_ok=True)
    database = out / "harmrank.db"
    database.unlink(missing_ok=True)  # the demo's own database: every demo starts afresh
    # Loopback only, whatever HARMRANK_*_HOST says: the demo has no token.
    options = StackOptions(host=LOOPBACK, worker_loops=DEMO_WORKER_LOOPS, log_level="warning")
    members = _members(options, database, free_ports=True)

    async def job() -> int:
        code = await asyncio.to_thread(demo, _gateway_url(members), out, console)
        if code == 0:
            where_to_look(out, console)
        return code

    return asyncio.run(run_stack(members, options, console, job))


def serve_demo(options: StackOptions, database: Path, console: Console) -> int:
    """The stack on its usual ports with the demo backends and dataset, until Ctrl-C."""
    from harmrank.cli.client import CliError, Gateway
    from harmrank.demo.flow import upload_dataset

    options = StackOptions(
        host=LOOPBACK,
        worker_loops=options.worker_loops,
        log_level=options.log_level,
        access_log=options.access_log,
    )
    members = _members(options, database, free_ports=False)

    def upload() -> int:
        try:
            with Gateway(_gateway_url(members)) as gateway:
                upload_dataset(gateway, console)
        except CliError as error:
            console.print(f"[red]error[/red] ({error.error_type}): {error.message}")
            return 2
        return 0

    async def job() -> int:
        if code := await asyncio.to_thread(upload):
            return code
        console.print("demo stack ready: examples/demo/run.yaml is a run to create; Ctrl-C stops")
        await asyncio.Event().wait()  # stay up until the stack is stopped
        return 0

    return asyncio.run(run_stack(members, options, console, job))
