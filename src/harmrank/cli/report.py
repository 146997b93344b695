"""``harmrank report RUN --out DIR``: a run's report from the gateway, as files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from harmrank.cli.client import DEFAULT_BASE_URL, CliError, Gateway
from harmrank.cli.display import shortfalls
from harmrank.cli.options import BaseUrl, Token, console, fail
from harmrank.cli.runs import RunId

HTML_PATH = "/v1/runs/{run_id}/report.html"


def report(
    run_id: RunId,
    out: Annotated[Path, typer.Option("--out", help="The folder to write the files into.")],
    base_url: BaseUrl = DEFAULT_BASE_URL,
    token: Token = None,
) -> None:
    """Fetch a run's report into DIR: report.json always, report.html when the gateway has it."""
    try:
        with Gateway(base_url, token) as gateway:
            written = fetch_report(gateway, run_id, out)
    except CliError as error:
        raise fail(error) from None
    except OSError as exc:
        raise fail(CliError("io_error", f"cannot write to {out}: {exc.strerror or exc}")) from None
    show = console()
    for path in written:
        show.print(f"wrote {path}")
    # A judge that ranked less than asked is the first thing to know, not a line in a file.
    report_json = json.loads(written[0].read_text(encoding="utf-8"))
    for text in shortfalls(report_json):
        show.print(f"[red]failures[/red]: {text}", soft_wrap=True)


def fetch_report(gateway: Gateway, run_id: int, out: Path) -> list[Path]:
    """Write report.json (a missing report is an error) and report.html (a missing one is not)."""
    data = gateway.json("GET", f"/v1/runs/{run_id}/report")
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written = [json_path]
    try:
        html = gateway.request("GET", HTML_PATH.format(run_id=run_id)).content
    except CliError as error:
        if error.error_type != "not_found":
            raise
        console().print(
            f"[yellow]note[/yellow]: the gateway at {gateway.base_url} serves no HTML report "
            f"for run {run_id} ({error.message}); wrote the JSON report only",
            soft_wrap=True,
        )
        return written
    html_path = out / "report.html"
    html_path.write_bytes(html)
    written.append(html_path)
    return written
