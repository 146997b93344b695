"""The tables of the jury and prediction-powered part of a report (``summary_ppi``)."""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

from harmrank.gateway.reports.summary_ppi import BudgetEntry, PPIEntry, PPISummary
from harmrank.gateway.reports.tables import Table, fmt

PPI_TITLE = "Harm rate with few human labels: human-only, judge-only (biased) and PPI++"
BUDGET_TITLE = "How many human labels? Harm rate, mean over the models"
METHOD_ORDER = ("human_only", "judge_only", "ppi")


def _cell(entry: PPIEntry | None) -> str:
    if entry is None:
        return "–"
    ci = f" [{fmt(entry.ci_low, 2)}, {fmt(entry.ci_high, 2)}]" if entry.ci_low is not None else ""
    return f"{fmt(entry.estimate)}{ci}"


def ppi_table(summary: PPISummary) -> Table | None:
    """Per predictor and model, the harm rate by each method, with the labels used."""
    cells: dict[tuple[str, str], dict[str, PPIEntry]] = defaultdict(dict)
    for e in summary.ppi:
        if e.estimand == "harm_rate":
            cells[(e.judge, e.model)][e.method] = e
    if not cells:
        return None
    rows = []
    for (judge, model), by_method in cells.items():
        any_entry = next(iter(by_method.values()))
        counts = f"{any_entry.n_human} / {any_entry.n_judge}"
        rows.append([judge, model, *(_cell(by_method.get(m)) for m in METHOD_ORDER), counts])
    policy = summary.ppi[0].policy
    note = (
        f"Human labels chosen by: {policy}. judge-only is biased whenever the judge is: shown so "
        "the bias can be seen. PPI++ (power-tuned) uses the human labels to correct the judge. "
        "Win rates and mean harm ranks are in the JSON."
    )
    columns = ["predictor", "model", "human-only", "judge-only (biased)", "PPI++", "labels h / j"]
    return Table(PPI_TITLE, columns, rows, note=note + "".join(f" {n}" for n in summary.ppi_notes))


def _means(entries: list[BudgetEntry]) -> dict[str, tuple[float, float, float | None]]:
    by_method: dict[str, list[BudgetEntry]] = defaultdict(list)
    for e in entries:
        by_method[e.method].append(e)
    out = {}
    for method, rows in by_method.items():
        equivalent = [r.human_only_equivalent_n for r in rows if r.human_only_equivalent_n]
        out[method] = (
            mean(r.coverage for r in rows),
            mean(r.mean_width for r in rows),
            mean(equivalent) if equivalent else None,
        )
    return out


def budget_table(summary: PPISummary) -> Table | None:
    groups: dict[tuple[str, int], list[BudgetEntry]] = defaultdict(list)
    for e in summary.human_label_budget:
        if e.estimand == "harm_rate":
            groups[(e.judge, e.n_human)].append(e)
    if not groups:
        return None
    rows = []
    for (judge, n), entries in groups.items():
        m = _means(entries)
        rows.append(
            [
                judge,
                str(n),
                *(fmt(m[k][0], 2) for k in METHOD_ORDER),
                fmt(m["human_only"][1]),
                fmt(m["ppi"][1]),
                fmt(m["ppi"][2], 0),
            ]
        )
    columns = [
        "predictor",
        "n human",
        "coverage human-only",
        "coverage judge-only",
        "coverage PPI++",
        "width human-only",
        "width PPI++",
        "human-only n of equal width",
    ]
    stated = (summary.human_label_budget_settings or {}).get("stated", "")
    note = f"{stated}. Every estimand and model is in summary.json (human_label_budget)."
    return Table(BUDGET_TITLE, columns, rows, note=note)


def ppi_tables(summary: PPISummary) -> list[Table]:
    return [t for t in (ppi_table(summary), budget_table(summary)) if t is not None]
