"""The headline tables, built once from the summary and shown by the terminal, HTML and Markdown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harmrank.gateway.reports.summary import AgreementEntry, Summary

AGREEMENT_COLUMNS = (
    ("rbo", "harmful", "RBO (harmful lists)"),
    ("rbo", "tied", "RBO (tied lists)"),
    ("exact_match", None, "exact match"),
    ("kendall_tau_b", None, "Kendall τ-b"),
    ("krippendorff_alpha", None, "Krippendorff α"),
    ("f1_harmful", None, "F1 harmful"),
)


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _interval(entry: AgreementEntry) -> str:
    ci = f" [{fmt(entry.ci_low, 2)}, {fmt(entry.ci_high, 2)}]" if entry.ci_low is not None else ""
    return f"{fmt(entry.value)}{ci}"


def _chance(entry: AgreementEntry) -> str:
    return fmt(entry.chance)


def per_model_table(
    title: str, values: dict[str, dict[str, float | None]], models: list[str]
) -> Table:
    rows = [[name, *(fmt(by_model[m]) for m in models)] for name, by_model in values.items()]
    return Table(title, ["annotator", *models], rows)


def wins_table(summary: Summary, annotator: str) -> Table:
    rows = []
    for model, opponents in summary.pairwise_wins[annotator].items():
        for other, o in opponents.items():
            if summary.models.index(model) < summary.models.index(other):
                rate = f"{fmt(o.win_rate)} [{fmt(o.ci_low, 2)}, {fmt(o.ci_high, 2)}]"
                rows.append([f"{model} vs {other}", str(o.wins), str(o.losses), str(o.ties), rate])
    return Table(
        f"Pairwise wins, least harm ({annotator})",
        ["pair", "wins", "losses", "ties", "win rate [CI]"],
        rows,
        note=summary.conventions["wins"],
    )


def _lookup(entries: list[AgreementEntry], metric: str, lists: str | None) -> AgreementEntry | None:
    for entry in entries:
        if entry.metric == metric and (lists is None or entry.params.get("lists") == lists):
            return entry
    return None


def _pairs(summary: Summary) -> dict[tuple[str, str], list[AgreementEntry]]:
    pairs: dict[tuple[str, str], list[AgreementEntry]] = {}
    for entry in summary.agreement:
        if entry.category is None:
            pairs.setdefault((entry.a, entry.b), []).append(entry)
    return pairs


def _agreement_rows(summary: Summary, cell: Callable[[AgreementEntry], str]) -> list[list[str]]:
    rows = []
    for (a, b), entries in _pairs(summary).items():
        cells = [_lookup(entries, metric, lists) for metric, lists, _ in AGREEMENT_COLUMNS]
        shared = str(max(e.n for e in entries))
        rows.append([f"{a} vs {b}", shared, *(cell(c) if c else "–" for c in cells)])
    return rows


def agreement_table(summary: Summary) -> Table:
    return Table(
        f"Agreement (value [{summary.settings['confidence']:.0%} CI])",
        ["pair (a vs reference b)", "prompts", *(label for _, _, label in AGREEMENT_COLUMNS)],
        _agreement_rows(summary, _interval),
        note=f"{summary.conventions['rbo']}. "
        f"Empty lists: {summary.conventions['rbo_empty_lists']}. "
        f"Intervals: {summary.conventions['bootstrap']}.",
    )


def chance_table(summary: Summary) -> Table:
    return Table(
        "Agreement expected by chance",
        ["pair (a vs reference b)", "prompts", *(label for _, _, label in AGREEMENT_COLUMNS)],
        _agreement_rows(summary, _chance),
        note=summary.conventions["chance"] + ".",
    )


def headline_tables(summary: Summary) -> list[Table]:
    models = summary.models
    return [
        per_model_table("N/A (not harmful) rate", summary.na_rate, models),
        per_model_table("Most-harmful share", summary.most_harmful_share, models),
        agreement_table(summary),
        chance_table(summary),
    ]


def all_tables(summary: Summary) -> list[Table]:
    bt: dict[str, dict[str, float | None]] = {n: dict(s) for n, s in summary.bradley_terry.items()}
    return [
        *headline_tables(summary),
        per_model_table("Bradley–Terry strength (least harm; sums to 1)", bt, summary.models),
        *(wins_table(summary, name) for name in summary.annotators),
    ]
