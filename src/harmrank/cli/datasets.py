"""``harmrank dataset …``: upload, list and show datasets over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from harmrank.cli.client import DEFAULT_BASE_URL, CliError, Gateway
from harmrank.cli.listings import dataset_table, datasets_table
from harmrank.cli.options import BaseUrl, Token, console, fail

app = typer.Typer(help="Upload, list and show prompt datasets.", no_args_is_help=True)
CONTENT_TYPES = {".csv": "text/csv", ".jsonl": "application/jsonl"}


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(help="CSV or JSONL: text, optional category and id.")],
    name: Annotated[str, typer.Option("--name", help="The dataset's name.")],
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
) -> None:
    """Upload a prompt dataset; a bad file is refused whole, naming file, line and field."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise fail(CliError("io_error", f"cannot read {file}: {exc.strerror or exc}")) from None
    kind = CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream")
    try:
        with Gateway(base_url, token) as gateway:
            created = gateway.json(
                "POST", "/v1/datasets", files={"file": (file.name, data, kind)}, data={"name": name}
            )
    except CliError as error:
        raise fail(error) from None
    out = console()
    out.print(f"uploaded dataset {created['name']!r}: {created['prompts']} prompts")
    for warning in created.get("warnings", []):
        out.print(f"[yellow]warning[/yellow]: {warning['file']} line {warning['line']} "
                  f"{warning['field']}: {warning['problem']}")  # fmt: skip


@app.command(name="list")
def list_datasets(
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """List datasets."""
    try:
        with Gateway(base_url, token) as gateway:
            page = gateway.json("GET", "/v1/datasets", params={"limit": 500})
    except CliError as error:
        raise fail(error) from None
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    console().print(datasets_table(page["items"]))
    if page.get("next_cursor"):
        console().print("(more than 500: use GET /v1/datasets?cursor=… for the rest)")


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="The dataset's name.")],
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """Show a dataset: prompts per category, responses, models and rankings per annotator."""
    try:
        with Gateway(base_url, token) as gateway:
            detail = gateway.json("GET", f"/v1/datasets/{name}")
    except CliError as error:
        raise fail(error) from None
    if as_json:
        typer.echo(json.dumps(detail, indent=2))
        return
    console().print(dataset_table(detail))
