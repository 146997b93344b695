"""``harmrank run …``: create, follow, inspect, cancel, resume and export runs over HTTP."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live

from harmrank.cli.client import DEFAULT_BASE_URL, CliError, Gateway
from harmrank.cli.display import headline, progress_line, run_view
from harmrank.cli.listings import runs_table
from harmrank.cli.options import BaseUrl, Token, console, fail

app = typer.Typer(help="Create, follow and manage runs on a gateway.", no_args_is_help=True)

FINISHED = frozenset({"done", "done_with_failures", "failed", "cancelled"})
SUCCESS = "done"
REPORTED = frozenset({"done", "done_with_failures"})

RunId = Annotated[int, typer.Argument(help="The run's id.", min=1)]


class What(StrEnum):
    responses = "responses"
    rankings = "rankings"


class Format(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def load_spec(path: Path) -> dict[str, Any]:
    """A ``RunCreate`` from YAML or JSON, checked here so a mistake names its field."""
    from harmrank.gateway.runs.schemas import RunCreate

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError("bad_config", f"cannot read {path}: {exc.strerror or exc}") from exc
    data = _parse(path, text)
    try:
        return RunCreate.model_validate(data).model_dump(mode="json", exclude_unset=True)
    except ValidationError as exc:
        raise CliError("bad_config", f"{path}: {describe(exc)}") from exc


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CliError("bad_config", f"{path}: not valid JSON ({exc})") from exc
    # YAML is a superset of JSON, so any other suffix is read as YAML.
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError("bad_config", f"{path}: not valid YAML ({exc})") from exc


def describe(exc: ValidationError) -> str:
    """Every problem as ``field.path: message``, joined by semicolons."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


@app.command()
def create(
    config: Annotated[Path, typer.Option("--config", help="The run as YAML or JSON (RunCreate).")],
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="The same key never makes a second run (safe to retry)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Show progress until the run finishes.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls.", min=0.05)] = 1.0,
) -> None:
    """Create a run from a config file; with --follow, watch it and show its headline results."""
    out = console()
    try:
        spec = load_spec(config)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        with Gateway(base_url, token) as gateway:
            response = gateway.request("POST", "/v1/runs", json=spec, headers=headers)
            run: dict[str, Any] = response.json()
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            out.print(f"{'existing' if replayed else 'created'} run {run['id']}")
            if not follow:
                out.print(run_view(run))
                return
            raise typer.Exit(follow_run(gateway, run, interval, out))
    except CliError as error:
        raise fail(error) from None


def follow_run(gateway: Gateway, run: dict[str, Any], interval: float, out: Console) -> int:
    """Show progress until the run finishes, then why tasks failed and its headline; 0 only
    when every task succeeded.

    On a terminal the table is redrawn in place; otherwise (a log, a pipe, CI) one progress
    line is printed per poll, so a follower sees steady signs of life and every stall."""
    run = gateway.json("GET", f"/v1/runs/{run['id']}")  # the creation answer has no failures
    if out.is_terminal:
        run = _follow_live(gateway, run, interval, out)
    else:
        run = _follow_lines(gateway, run, interval, out)
    out.print(run_view(run))
    if run.get("has_report"):
        out.print(headline(gateway.json("GET", f"/v1/runs/{run['id']}/report")))
    out.print(f"run {run['id']} {run['status']}")
    return 0 if run["status"] == SUCCESS else 1


def _follow_live(
    gateway: Gateway, run: dict[str, Any], interval: float, out: Console
) -> dict[str, Any]:
    with Live(run_view(run), console=out, auto_refresh=False, transient=True) as live:
        while not _settled(run):
            time.sleep(interval)
            run = gateway.json("GET", f"/v1/runs/{run['id']}")
            live.update(run_view(run), refresh=True)
    return run


def _follow_lines(
    gateway: Gateway, run: dict[str, Any], interval: float, out: Console
) -> dict[str, Any]:
    out.print(progress_line(run), soft_wrap=True)
    while not _settled(run):
        time.sleep(interval)
        run = gateway.json("GET", f"/v1/runs/{run['id']}")
        out.print(progress_line(run), soft_wrap=True)
    return run


def _settled(run: dict[str, Any]) -> bool:
    # A finished run's report is written in the score task's own transaction, so it is there
    # by the time the status says so; the check keeps the display honest if that ever changes.
    reported = run["status"] not in REPORTED or bool(run.get("has_report"))
    return run["status"] in FINISHED and reported


def _one(method: str, path: str, base_url: str, token: str | None) -> None:
    try:
        with Gateway(base_url, token) as gateway:
            console().print(run_view(gateway.json(method, path)))
    except CliError as error:
        raise fail(error) from None


@app.command()
def status(
    run_id: RunId,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Show a run's status, its task counts per stage, and why tasks fail (if they do)."""
    if not as_json:
        return _one("GET", f"/v1/runs/{run_id}", base_url, token)
    try:
        with Gateway(base_url, token) as gateway:
            typer.echo(json.dumps(gateway.json("GET", f"/v1/runs/{run_id}"), indent=2))
    except CliError as error:
        raise fail(error) from None


@app.command(name="list")
def list_runs(
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
    status: Annotated[
        str | None, typer.Option(help="Only runs of this status (queued, running, done, …).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """List runs, newest first."""
    params: dict[str, str | int] = {"limit": limit} | ({"status": status} if status else {})
    try:
        with Gateway(base_url, token) as gateway:
            page = gateway.json("GET", "/v1/runs", params=params)
    except CliError as error:
        raise fail(error) from None
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    console().print(runs_table(page["items"]))
    if page.get("next_cursor"):
        console().print(f"(more: --limit above {limit})")


@app.command()
def cancel(run_id: RunId, base_url: BaseUrl = DEFAULT_BASE_URL, token: Token = None) -> None:
    """Cancel a run's queued tasks; running ones stop at their next heartbeat."""
    _one("POST", f"/v1/runs/{run_id}/cancel", base_url, token)


@app.command()
def resume(run_id: RunId, base_url: BaseUrl = DEFAULT_BASE_URL, token: Token = None) -> None:
    """Queue a run's cancelled and failed tasks again."""
    _one("POST", f"/v1/runs/{run_id}/resume", base_url, token)


@app.command()
def export(
    run_id: RunId,
    out: Annotated[Path, typer.Option("--out", help="The file to write ('-': stdout).")],
    what: Annotated[What, typer.Option("--what", help="Which rows.")] = What.responses,
    fmt: Annotated[Format, typer.Option("--format", help="csv or jsonl.")] = Format.csv,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
) -> None:
    """Export a run's responses or rankings as CSV or JSON Lines."""
    path = f"/v1/runs/{run_id}/{what.value}/export"
    try:
        with Gateway(base_url, token) as gateway:
            size = download(gateway, path, {"format": fmt.value}, out)
    except CliError as error:
        raise fail(error) from None
    except OSError as exc:
        raise fail(CliError("io_error", f"cannot write {out}: {exc.strerror or exc}")) from None
    if str(out) != "-":
        console().print(f"wrote {what.value} of run {run_id} to {out} ({size} bytes)")


def download(gateway: Gateway, path: str, params: dict[str, str], out: Path) -> int:
    """Stream a GET to a file (or stdout for '-'); the bytes written. No file on an error."""
    with gateway.stream(path, params=params) as response:
        if str(out) == "-":
            return _to_stdout(response.iter_bytes())
        partial = out.with_name(out.name + ".partial")
        try:
            with partial.open("wb") as file:
                for chunk in response.iter_bytes():
                    file.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(out)
        return out.stat().st_size


def _to_stdout(chunks: Any) -> int:
    stream = typer.get_binary_stream("stdout")
    size = 0
    for chunk in chunks:
        stream.write(chunk)
        size += len(chunk)
    stream.flush()
    return size
