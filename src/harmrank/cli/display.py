"""What the run commands show: a run's progress per stage, and the headline of its report."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table

from harmrank.metrics.findings import number

STAGES = ("generate", "judge", "score")
STATES = ("queued", "running", "done", "failed", "reused", "cancelled")
STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "done": "green",
    "done_with_failures": "red",
    "failed": "red",
    "cancelled": "magenta",
}
# The agreement figures shown in the headline, in the terminal's width: (metric, lists, title).
AGREEMENT_COLUMNS = (
    ("rbo_known", None, "RBO known"),
    ("rbo", "harmful", "RBO paper"),
    ("exact_match", None, "exact"),
    ("kendall_tau_b", None, "τ-b"),
    ("krippendorff_alpha", None, "α"),
    ("f1_harmful", None, "F1"),
)


def fmt(value: object, digits: int = 3) -> str:
    return number(float(value), digits) if isinstance(value, int | float) else "–"


def status_text(run: dict[str, Any]) -> str:
    status = str(run.get("status"))
    style = STATUS_STYLE.get(status, "white")
    report = "; report ready" if run.get("has_report") else ""
    return f"run {run.get('id')}: [{style}]{status}[/{style}], {run.get('prompts')} prompts{report}"


def progress_table(run: dict[str, Any]) -> Table:
    """Task counts per stage and state, with each stage's share finished."""
    table = Table(title=status_text(run), title_justify="left")
    table.add_column("stage")
    for state in STATES:
        table.add_column(state, justify="right")
    table.add_column("finished", justify="right")
    progress: dict[str, dict[str, int]] = run.get("progress") or {}
    for stage in STAGES:
        counts = progress.get(stage, {})
        total = sum(counts.values())
        finished = sum(counts.get(s, 0) for s in ("done", "failed", "reused", "cancelled"))
        share = f"{finished / total:.0%}" if total else "–"
        table.add_row(stage, *(str(counts.get(s, 0)) for s in STATES), share)
    return table


def failures_table(run: dict[str, Any]) -> Table | None:
    """Per stage and model or judge: tasks failed and retrying, with the first and last error."""
    groups: list[dict[str, Any]] = run.get("failures") or []
    if not groups:
        return None
    table = Table(title="Failing tasks", title_justify="left")
    for column in ("stage", "model/judge", "failed", "retrying", "first error", "last error"):
        table.add_column(column, justify="right" if column in ("failed", "retrying") else "left")
    for group in groups:
        table.add_row(
            group["stage"],
            group.get("judge") or group.get("model") or "–",
            str(group["failed"]),
            str(group["retrying"]),
            error_text(group["first_error"]),
            error_text(group["last_error"]),
        )
    return table


def error_text(error: dict[str, Any]) -> str:
    when = str(error.get("at") or "")[:19].replace("T", " ")
    return f"{error['error_type']}: {error['message']}" + (f" ({when})" if when else "")


def run_view(run: dict[str, Any]) -> RenderableType:
    """The progress table, then why tasks fail and whether the run is stalled."""
    parts: list[RenderableType] = [progress_table(run)]
    if (failing := failures_table(run)) is not None:
        parts.append(failing)
    if lacking := missing_text(run):
        parts.append(f"[red]missing rankings[/red]: {lacking}")
    if run.get("stalled"):
        parts.append(f"[red]stalled[/red]: {run['stalled']}")
    return Group(*parts)


def missing_text(run: dict[str, Any]) -> str:
    """The judges the run's report lacks rankings of, with how many prompts; "" when none."""
    lacking: dict[str, int] = run.get("missing_rankings") or {}
    return "; ".join(
        f"{judge} {n} of {run.get('prompts', '?')} prompts" for judge, n in lacking.items()
    )


def progress_line(run: dict[str, Any]) -> str:
    """One plain line of progress, for logs and pipes (no terminal to redraw a table in)."""
    progress: dict[str, dict[str, int]] = run.get("progress") or {}
    stages = []
    for stage in STAGES:
        counts = progress.get(stage, {})
        finished = sum(counts.get(s, 0) for s in ("done", "failed", "reused", "cancelled"))
        failed = f" ({counts['failed']} failed)" if counts.get("failed") else ""
        stages.append(f"{stage} {finished}/{sum(counts.values())}{failed}")
    line = f"run {run.get('id')} {run.get('status')}: " + ", ".join(stages)
    retrying = sum(g["retrying"] for g in run.get("failures") or [])
    if retrying:
        line += f"; {retrying} retrying"
    if lacking := missing_text(run):
        line += f"; missing rankings: {lacking}"
    if run.get("stalled"):
        line += f"; stalled: {run['stalled']}"
    return line


def harm_table(report: dict[str, Any]) -> Table:
    """Per annotator and model: the share of prompts where the response was ranked harmful."""
    models: list[str] = report.get("models") or []
    table = Table(
        title="Harm rate (share of prompts ranked harmful) and most-harmful share",
        title_justify="left",
    )
    table.add_column("annotator", no_wrap=True)
    for model in models:
        table.add_column(model, justify="right")
    missing = {c["annotator"]: c for c in report.get("coverage") or [] if c.get("missing")}
    sections: dict[str, Any] = report.get("annotators") or {}
    for name, section in sections.items():
        rates = section.get("harm_rates") or {}
        na_rates = rates.get("na_rate") or [None] * len(models)
        most = rates.get("most_harmful_share") or [None] * len(models)
        cells = [
            f"{fmt(None if na is None else 1 - na)} / {fmt(top)}"
            for na, top in zip(na_rates, most, strict=False)
        ]
        table.add_row(
            f"{name} (n={section.get('n_prompts', '?')}{_missing(missing, name)})", *cells
        )
    for name in missing.keys() - sections.keys():  # ranked nothing: no figures, still shown
        table.add_row(f"[red]{name} (n=0{_missing(missing, name)})[/red]", *("–" for _ in models))
    return table


def _missing(missing: dict[str, dict[str, Any]], name: str) -> str:
    c = missing.get(name)
    return f", {c['missing']} of {c['expected']} missing" if c else ""


def shortfalls(report: dict[str, Any]) -> list[str]:
    """The report's findings about missing rankings and failed tasks, which come first."""
    found: list[dict[str, Any]] = report.get("findings") or []
    return [
        f["text"]
        for f in found
        if any(e.startswith(("coverage.", "failures.")) for e in f.get("evidence") or [])
    ]


def _figure(figures: list[dict[str, Any]], metric: str, lists: str | None) -> str:
    for figure in figures:
        if figure.get("metric") != metric:
            continue
        if lists is not None and (figure.get("params") or {}).get("lists") != lists:
            continue
        chance = figure.get("chance")
        suffix = f" ({fmt(chance, 2)})" if isinstance(chance, int | float) else ""
        return f"{fmt(figure.get('value'))}{suffix}"
    return "–"


def agreement_table(report: dict[str, Any]) -> Table:
    """One row per pair of annotators and figure, each with its chance baseline in brackets:
    long rather than wide, so the table stays readable at 80 columns."""
    table = Table(title="Agreement (chance baseline in brackets)", title_justify="left")
    table.add_column("pair (prompts)", overflow="fold")
    table.add_column("figure", no_wrap=True)
    table.add_column("value (chance)", justify="right", no_wrap=True)
    for pair in report.get("agreement") or []:
        figures: list[dict[str, Any]] = pair.get("figures") or []
        pair_name = f"{pair.get('a')} vs {pair.get('b')} ({pair.get('n_shared_prompts')})"
        for row, (metric, lists, title) in enumerate(AGREEMENT_COLUMNS):
            label = pair_name if row == 0 else ""
            table.add_row(label, title, _figure(figures, metric, lists), end_section=False)
        table.add_section()
    return table


def headline(report: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = [f"[red]failures[/red]: {t}" for t in shortfalls(report)]
    parts.append(harm_table(report))
    if report.get("agreement"):
        parts.append(agreement_table(report))
    else:
        parts.append("[dim]No agreement figures: the run has a single annotator.[/dim]")
    return Group(*parts)
