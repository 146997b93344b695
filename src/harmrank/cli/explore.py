"""``harmrank explore``: the explorer over a reproduction's database, on this machine only."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from harmrank.common.errors import HarmrankError
from harmrank.gateway.db.engine import create_engine, normalise_url, sqlite_url
from harmrank.gateway.db.models import Dataset
from harmrank.gateway.explore.standalone import (
    DEFAULT_PORT,
    HOST,
    check_database,
    create_explorer_app,
    local_explorer_url,
)


def database_of(out_dir: Path | None, db: str | None) -> str:
    if (out_dir is None) == (db is None):
        raise typer.BadParameter("give OUT_DIR (what `harmrank reproduce --out` wrote) or --db")
    if db is not None:
        return normalise_url(db)
    assert out_dir is not None
    path = out_dir / "harmrank.db"
    if not path.is_file():
        raise typer.BadParameter(
            f"{path} does not exist: run `harmrank reproduce --out {out_dir}` first, or give --db"
        )
    return sqlite_url(path)


async def dataset_names(url: str) -> list[str]:
    await check_database(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return list(await connection.scalars(select(Dataset.name).order_by(Dataset.id)))
    finally:
        await engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def explore(
    out_dir: Annotated[
        Path | None, typer.Argument(help="The folder `harmrank reproduce --out` wrote.")
    ] = None,
    db: Annotated[str | None, typer.Option(help="A database URL instead of OUT_DIR.")] = None,
    port: Annotated[
        int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")
    ] = DEFAULT_PORT,
) -> None:
    """Serve the explorer over a reproduction's (or any) results on 127.0.0.1; prints its URL."""
    import uvicorn

    url = database_of(out_dir, db)
    try:
        names = asyncio.run(dataset_names(url))
    except HarmrankError as exc:
        typer.echo(f"error ({exc.error_type}): {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if not names:
        typer.echo("error: the database holds no dataset to explore", err=True)
        raise typer.Exit(2)
    port = port or free_port()
    for name in names:
        typer.echo(f"Explorer: {local_explorer_url(name, port)}")
    typer.echo(
        "Offensive content: the page asks once per session before showing any. Ctrl-C stops."
    )
    uvicorn.run(create_explorer_app(url), host=HOST, port=port, log_level="warning")
