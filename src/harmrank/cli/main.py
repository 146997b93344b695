"""The ``harmrank`` command line."""

from __future__ import annotations

import importlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from harmrank.common.settings import ServiceSettings

app = typer.Typer(
    name="harmrank",
    help="Rank the harmfulness of small LLMs and measure how well large LLMs judge it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class Service(StrEnum):
    gateway = "gateway"
    generator = "generator"
    judge = "judge"
    metrics = "metrics"


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
) -> None:
    """Rebuild the study's analysis from its public data: HTML/Markdown report, figures, JSON."""
    from rich.console import Console

    from harmrank.cli.reproduce import run
    from harmrank.metrics.report import ReportSettings

    settings = ReportSettings(p=p, resamples=resamples, seed=seed)
    raise typer.Exit(run(data, out, settings, Console()))


@app.command()
def serve(
    service: Annotated[Service, typer.Argument(help="Which service to run.")],
    host: Annotated[
        str | None, typer.Option(help="Listen address (default from settings).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default from settings).")] = None,
) -> None:
    """Run one harmrank service with uvicorn (settings from HARMRANK_<SERVICE>_* variables)."""
    import uvicorn

    settings = _settings(service)
    uvicorn.run(
        SERVICES[service][0],
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Task loops in this process.", min=1)] = 4,
) -> None:
    """Work runs' tasks (generate, judge, score) until SIGINT or SIGTERM."""
    from harmrank.gateway.worker_main import main

    main(concurrency)


@app.command()
def migrate() -> None:
    """Bring the gateway's database to the newest schema (Alembic upgrade head)."""
    from harmrank.gateway.db.migrate import upgrade
    from harmrank.gateway.settings import GatewaySettings
    from harmrank.gateway.worker_main import database_url

    upgrade(database_url(GatewaySettings()))
    typer.echo("database is at the newest migration")


if __name__ == "__main__":
    app()
