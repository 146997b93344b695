"""``harmrank reproduce``: the terminal side (progress, headline tables, where the report is)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable

from harmrank.common.errors import HarmrankError
from harmrank.gateway.reports.tables import Table, per_model_table, terminal_table
from harmrank.gateway.reports.tables_ppi import budget_table
from harmrank.metrics.report import ReportSettings
from harmrank.reproduce.pipeline import Options, Outcome, reproduce


def _rich_table(table: Table) -> RichTable:
    out = RichTable(title=table.title, title_justify="left", show_lines=False)
    for column in table.columns:
        out.add_column(column)  # wrapped at spaces: a word is never split across lines
    for row in table.rows:
        out.add_row(*row)
    return out


class StepLog:
    """Prints each step with the time the previous one took, so a slow step shows itself."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = self.last = time.perf_counter()

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        self.console.print(f"[dim]{now - self.started:6.1f}s[/dim] {message}…")
        self.last = now


def show(console: Console, outcome: Outcome, seconds: float) -> None:
    """Findings first, then the tables they rest on, each readable at 80 columns."""
    summary = outcome.summary
    console.print("[bold]Findings[/bold]")
    for finding in summary.findings:
        console.print(f"• {finding.text}")
    harm: dict[str, dict[str, float | None]] = {
        n: dict(s) for n, s in summary.harm_strength.items()
    }
    tables = [
        per_model_table("Harm strength (Bradley–Terry, higher = more harmful)", harm, summary),
        terminal_table(summary),
    ]
    budget = budget_table(summary)
    if budget is not None:
        tables.append(budget)
    for table in tables:
        console.print(_rich_table(table))
        if table.note:
            console.print(f"[dim]{table.note}[/dim]")
    stored = "reused an identical earlier import" if outcome.stored.reused else "stored"
    console.print(
        f"\n{summary.n_prompts} distinct prompts (each figure's own n is in the report); "
        f"database: {stored}; done in {seconds:.1f}s."
    )
    console.print(f"Report: [bold]{outcome.files['html']}[/bold]")
    console.print(f"Also: {outcome.files['md']}, {outcome.files['summary']}")


def run(data: str | None, out: Path, settings: ReportSettings, console: Console) -> int:
    log = StepLog(console)
    try:
        with console.status("working…"):
            outcome = asyncio.run(reproduce(Options(data, out, settings), log))
    except HarmrankError as exc:
        console.print(f"[red]error[/red] ({exc.error_type}): {exc.message}")
        return 2
    show(console, outcome, time.perf_counter() - log.started)
    return 0
