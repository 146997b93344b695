"""Options every client command shares: where the gateway is and the token it is sent.

One environment variable each (``HARMRANK_BASE_URL``, ``HARMRANK_TOKEN``) and one default base
URL; the token goes with every request, reads included, since a gateway may require it for
reads (``HARMRANK_GATEWAY_REQUIRE_TOKEN_FOR_READS``).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from harmrank.cli.client import CliError

BASE_URL_ENV = "HARMRANK_BASE_URL"
TOKEN_ENV = "HARMRANK_TOKEN"

BaseUrl = Annotated[str, typer.Option("--base-url", envvar=BASE_URL_ENV, help="The gateway's URL.")]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", envvar=TOKEN_ENV, help="Bearer token, sent with every request (reads too)."
    ),
]


def console() -> Console:
    return Console(highlight=False)


def fail(error: CliError, out: Console | None = None) -> typer.Exit:
    """Print the error as ``error (error_type): message``; the exit to raise (status 2)."""
    (out or Console(stderr=True, highlight=False)).print(
        f"[red]error[/red] ({error.error_type}): {error.message}", soft_wrap=True
    )
    return typer.Exit(2)
