"""The ``harmrank`` command line."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="harmrank",
    help="Rank the harmfulness of small LLMs and measure how well large LLMs judge it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class Service(StrEnum):
    metrics = "metrics"


FACTORIES = {Service.metrics: "harmrank.metrics.app:create_app"}


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
    """Run one harmrank service with uvicorn."""
    import uvicorn

    from harmrank.metrics.settings import MetricsSettings

    settings = MetricsSettings()
    uvicorn.run(
        FACTORIES[service],
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
    )


if __name__ == "__main__":
    app()
