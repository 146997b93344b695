"""The ``harmrank`` command line."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from harmrank.cli import annotation, datasets, runs
from harmrank.cli.client import DEFAULT_BASE_URL
from harmrank.cli.explore import explore
from harmrank.cli.options import BaseUrl, Token
from harmrank.cli.report import report
from harmrank.common.settings import ServiceSettings

app = typer.Typer(
    name="harmrank",
    help="Rank the harmfulness of small LLMs and measure how well large LLMs judge it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

app.add_typer(runs.app, name="run")
app.add_typer(datasets.app, name="dataset")
app.add_typer(annotation.app, name="annotation")
app.command(name="report")(report)
app.command(name="explore")(explore)


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import version

        typer.echo(f"harmrank {version('harmrank')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Rank the harmfulness of small LLMs and measure how well large LLMs judge it."""


class Service(StrEnum):
    gateway = "gateway"
    generator = "generator"
    judge = "judge"
    metrics = "metrics"


class BootstrapUnit(StrEnum):
    group = "group"
    prompt = "prompt"


# Seconds a `--workers` process may take to answer uvicorn's supervisor (see serve()).
WORKER_HEALTHCHECK_SECONDS = 60

# (app factory, settings class) per service; imported only for the service asked for.
SERVICES = {
    Service.gateway: (
        "harmrank.gateway.app:create_app",
        "harmrank.gateway.settings:GatewaySettings",
    ),
    Service.generator: (
        "harmrank.generator.app:create_app",
        "harmrank.generator.settings:GeneratorSettings",
    ),
    Service.judge: ("harmrank.judge.app:create_app", "harmrank.judge.settings:JudgeSettings"),
    Service.metrics: (
        "harmrank.metrics.app:create_app",
        "harmrank.metrics.settings:MetricsSettings",
    ),
}


def _settings(service: Service) -> ServiceSettings:
    module, _, name = SERVICES[service][1].partition(":")
    settings_class = getattr(importlib.import_module(module), name)
    loader = getattr(settings_class, "load", settings_class)  # the judge reads its secrets dir
    settings: ServiceSettings = loader()
    return settings


@app.command()
def reproduce(
    data: Annotated[
        str | None,
        typer.Option(
            help="Study data: a folder, a .zip/.tar.gz archive or a URL. "
            "Default: the public repository at a pinned commit, SHA-256 checked and cached."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the report.")] = Path("out"),
    p: Annotated[float, typer.Option(help="RBO persistence (0 < p < 1).", min=0.0, max=1.0)] = 0.9,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples over prompts.", min=0)] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and of chance simulations.")] = 0,
    bootstrap_unit: Annotated[
        BootstrapUnit,
        typer.Option(
            help="What the bootstrap resamples: whole student groups (the human reference's "
            "clusters; the prompt-level interval is shown beside) or single prompts."
        ),
    ] = BootstrapUnit.group,
) -> None:
    """Rebuild the study's analysis from its public data: HTML/Markdown report, figures, JSON."""
    from rich.console import Console

    from harmrank.cli.reproduce import run
    from harmrank.metrics.report import ReportSettings
    from harmrank.reproduce.pipeline import STUDY_CLUSTERS

    clusters = STUDY_CLUSTERS if bootstrap_unit is BootstrapUnit.group else None
    settings = ReportSettings(p=p, resamples=resamples, seed=seed, cluster_key=clusters)
    raise typer.Exit(run(data, out, settings, Console()))


@app.command()
def serve(
    service: Annotated[
        Service | None,
        typer.Argument(help="Which service to run; none: all four together (the local stack)."),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Listen address (default from settings).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port of one service (default from settings).")
    ] = None,
    worker_loops: Annotated[
        int,
        typer.Option(
            help="Local stack: tasks the gateway works at once (its in-process worker's "
            "concurrency).",
            min=1,
        ),
    ] = 2,
    access_log: Annotated[bool, typer.Option(help="Local stack: log every request.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="One service: processes serving it on one port (uvicorn workers sharing "
            "the database); /metrics sums over them (prometheus_client's multiprocess mode, "
            "in $PROMETHEUS_MULTIPROC_DIR or a temporary directory).",
            min=1,
        ),
    ] = 1,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Local stack with the demonstration model and judge servers and the demo "
            "dataset, on 127.0.0.1 only, with no token, database harmrank-demo.db.",
        ),
    ] = False,
) -> None:
    """Run one harmrank service, or with no SERVICE all four on this machine.

    One service: settings from HARMRANK_<SERVICE>_* variables. All four: each on its own port
    (HARMRANK_<SERVICE>_PORT, default 8000-8003) in this process, SQLite unless
    HARMRANK_DATABASE_URL says else, migrated at start, the gateway working tasks itself and its
    generator and judge URLs pointing at the local ones. Ctrl-C stops all.
    """
    if service is None:
        if port is not None:
            raise typer.BadParameter("with no SERVICE, set ports with HARMRANK_<SERVICE>_PORT")
        if workers != 1:
            raise typer.BadParameter("--workers needs a SERVICE")
        _serve_all(host, worker_loops, access_log, demo)
        return
    if demo:
        raise typer.BadParameter("--demo starts the whole stack: leave out SERVICE")
    import uvicorn

    settings = _settings(service)
    _warn_at_start(settings)
    if workers > 1 and service is Service.gateway:
        _migrate_once(settings)
    with _metrics_shared(workers > 1):
        uvicorn.run(
            SERVICES[service][0],
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            log_level=settings.log_level,
            workers=workers,
            # uvicorn kills a worker that does not answer its supervisor's ping within this many
            # seconds. Its default, 5 s, is shorter than a worker's own start (numpy, scipy and
            # matplotlib imported) on a busy machine, so every worker was killed and restarted
            # without end; a hung worker is still found, a minute later.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        )


def _warn_at_start(settings: ServiceSettings) -> None:
    """The generator and the judge service say which of their servers they cannot reach."""
    import asyncio

    from rich.console import Console

    from harmrank.cli.local_stack import show_warnings
    from harmrank.cli.startup import startup_warnings
    from harmrank.generator.settings import GeneratorSettings
    from harmrank.judge.settings import JudgeSettings

    generator = settings if isinstance(settings, GeneratorSettings) else None
    judge = settings if isinstance(settings, JudgeSettings) else None
    if generator is not None or judge is not None:
        warnings = asyncio.run(startup_warnings(generator, judge))
        show_warnings(warnings, Console(stderr=True, highlight=False))


@contextlib.contextmanager
def _metrics_shared(several: bool) -> Iterator[None]:
    """Several processes: each keeps its metric values in files of one directory, which every
    process's /metrics sums. Set before the processes start: prometheus_client reads it when
    it is imported. The directory is emptied first (old values would count again), and one
    made here is removed at the end."""
    import os
    import shutil
    import tempfile

    from harmrank.common.telemetry import MULTIPROCESS_DIR_ENV

    given = os.environ.get(MULTIPROCESS_DIR_ENV)
    if not several:
        yield
        return
    directory = Path(given or tempfile.mkdtemp(prefix="harmrank-metrics-"))
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_DIR_ENV] = str(directory)
    try:
        yield
    finally:
        if given is None:
            shutil.rmtree(directory, ignore_errors=True)


def _migrate_once(settings: ServiceSettings) -> None:
    """Several gateway processes: migrate here, once, rather than in each at once."""
    import os

    from harmrank.gateway.db.engine import database_url
    from harmrank.gateway.db.migrate import upgrade
    from harmrank.gateway.settings import GatewaySettings

    assert isinstance(settings, GatewaySettings)
    if settings.migrate_on_start:
        upgrade(database_url(settings))
        os.environ["HARMRANK_GATEWAY_MIGRATE_ON_START"] = "false"  # the workers' settings


def _serve_all(host: str | None, worker_loops: int, access_log: bool, demo: bool) -> None:
    from rich.console import Console

    from harmrank.cli.local_stack import StackOptions, serve_all
    from harmrank.gateway.settings import GatewaySettings

    options = StackOptions(
        host=host,
        worker_loops=worker_loops,
        log_level=GatewaySettings().log_level,
        access_log=access_log,
    )
    if demo:
        from harmrank.cli.demo import serve_demo

        if host not in (None, "127.0.0.1"):
            raise typer.BadParameter("--demo listens on 127.0.0.1 only (it has no token)")
        raise typer.Exit(serve_demo(options, Path("harmrank-demo.db"), Console()))
    raise typer.Exit(serve_all(options, Console()))


@app.command(name="demo")
def demo_command(
    out: Annotated[
        Path, typer.Option(help="Where to write report.json, report.html and the database.")
    ] = Path("demo-out"),
) -> None:
    """See the whole platform work in a minute: no GPU, no keys, no network.

    Starts every service on free 127.0.0.1 ports with demonstration backends (TGI-speaking
    model servers, an OpenAI-compatible judge server: real HTTP, made-up harmless text), uploads
    a harmless dataset, runs 3 demo models and 2 demo judges through the public API, follows the
    run live and writes its report to OUT.
    """
    from rich.console import Console

    from harmrank.cli.demo import run_demo

    raise typer.Exit(run_demo(out, Console(highlight=False)))


@app.command()
def worker(
    concurrency: Annotated[
        int,
        typer.Option(
            help="The most tasks in flight in this process, so the most generate and judge "
            "calls it makes at once: size it against your model servers and provider limits.",
            min=1,
        ),
    ] = 4,
    claim_batch: Annotated[
        int | None,
        typer.Option(
            help="The most tasks claimed in one transaction; twice it (at most the "
            "concurrency) are held claimed ahead of a free slot (default: the setting "
            "HARMRANK_GATEWAY_CLAIM_BATCH, or else a quarter of the concurrency, at least 16).",
            min=1,
        ),
    ] = None,
) -> None:
    """Work runs' tasks (generate, judge, score) until SIGINT or SIGTERM."""
    from harmrank.gateway.worker_main import main

    main(concurrency, claim_batch)


@app.command()
def migrate() -> None:
    """Bring the gateway's database to the newest schema (Alembic upgrade head)."""
    from harmrank.gateway.db.engine import database_url
    from harmrank.gateway.db.migrate import upgrade
    from harmrank.gateway.settings import GatewaySettings

    upgrade(database_url(GatewaySettings()))
    typer.echo("database is at the newest migration")


@app.command()
def smoke(
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            help="A small model to run (repeat the option); default: the generator's models "
            "when --generator-url is given, else the study's three."
        ),
    ] = None,
    judges: Annotated[
        list[str] | None,
        typer.Option(
            help="A judge to run (repeat; two or more, for agreement); default: the judge "
            "service's judges when --judge-url is given."
        ),
    ] = None,
    generator_url: Annotated[
        str | None, typer.Option(help="The generator's URL, to discover its models.")
    ] = None,
    judge_url: Annotated[
        str | None, typer.Option(help="The judge service's URL, to discover its judges.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.", min=1)] = 900.0,
) -> None:
    """Smoke-test a deployment: push a small harmless dataset through a whole run via the API."""
    from harmrank.cli.smoke import smoke as run_smoke

    code = run_smoke(
        base_url,
        token,
        timeout,
        models=models,
        judges=judges,
        generator_url=generator_url,
        judge_url=judge_url,
    )
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
