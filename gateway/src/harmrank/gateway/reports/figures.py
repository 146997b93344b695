"""The report's figures as PNG files.

Built with matplotlib's object API (``Figure`` without pyplot): no global backend state, no
display needed, and nothing to close, so it is safe inside a server process too.

Figure 1 of the study (ranks among prompts with no N/A), Figures 3–5 (each model's ranks with
N/A included), N/A rates, win rates (least harm), the RBO agreement matrix and, with a human
reference, each annotator's RBO against it by how much the humans agreed on the item; with the
label-budget simulation, interval width and coverage against the number of human labels.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harmrank.metrics.aggregate_humans import GROUPS
from harmrank.metrics.agreement import AgreementResult
from harmrank.metrics.label_budget import BudgetRow, LabelBudget
from harmrank.metrics.report import Report

DPI = 110
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# At most this many panels side by side: three panels of ~3.4 in at 110 dpi stay within the
# report's 1100 px column, so 8 pt labels (12 px) never shrink below 9 px on the page.
MAX_COLUMNS = 3
FloatArray = npt.NDArray[np.float64]
COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860")


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=DPI, metadata={"Software": "harmrank"})
    return path


def _grouped_bars(ax: Axes, groups: Sequence[str], series: dict[str, FloatArray]) -> None:
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=label, color=COLOURS[i % 6])
    ax.set_xticks(x, groups)


def _panels(n: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    """``n`` panels in rows of at most ``MAX_COLUMNS``; cells beyond ``n`` are removed, so no
    empty axes are drawn."""
    columns = min(n, MAX_COLUMNS)
    rows = -(-n // columns)
    fig = Figure(figsize=(width * columns, height * rows))
    axes = list(fig.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def _legend_below(fig: Figure, ax: Axes) -> None:
    """One legend for the whole figure, under the plots, so it never hides a bar."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.subplots_adjust(bottom=0.28)


def _complete_rank_names(report: Report) -> list[str]:
    # An annotator with no prompt free of N/A has nothing to draw: left out, not an empty panel.
    return [n for n, s in report.annotators.items() if s.histogram_complete.n_prompts > 0]


def complete_rank_figure(report: Report, out: Path) -> Path:
    """Study Figure 1: per annotator, share of each model at each rank (prompts with no N/A)."""
    names = _complete_rank_names(report)
    fig, axes = _panels(len(names), 3.4, 3.2)
    for ax, name in zip(axes, names, strict=True):
        hist = report.annotators[name].histogram_complete
        ranks = [str(v) for v in hist.rank_values]
        _grouped_bars(ax, ranks, {m: hist.shares[j] for j, m in enumerate(hist.models)})
        ax.set_title(f"{name} (n={hist.n_prompts})", fontsize=9)
        ax.set_xlabel("rank (higher = more harmful)")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("share of prompts")
    _legend_below(fig, axes[0])
    fig.suptitle("Ranks among prompts with no N/A (study Figure 1)", fontsize=10)
    return _save(fig, out / "figure1_complete_ranks.png")


def model_rank_figure(report: Report, model_index: int, out: Path) -> Path:
    """Study Figures 3–5: one model's rank distribution, N/A included, per annotator."""
    model = report.models[model_index]
    first = next(iter(report.annotators.values())).histogram_all
    values = ["N/A" if v == 0 else str(v) for v in first.rank_values]
    series = {
        name: section.histogram_all.shares[model_index]
        for name, section in report.annotators.items()
    }
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    _grouped_bars(ax, values, series)
    _legend_below(fig, ax)
    ax.set_title(f"{model}: rank distribution with N/A (study Figures 3–5)", fontsize=10)
    ax.set_xlabel("rank (N/A = not harmful; higher = more harmful)")
    ax.set_ylabel("share of prompts")
    ax.set_ylim(0, 1)
    return _save(fig, out / f"figure_ranks_{model_index + 1}_{_file_safe(model)}.png")


def _file_safe(name: str) -> str:
    """A model name as part of a file name: a name is the caller's text ("org/a", "../x"), so
    anything but letters, digits, '.', '_' and '-' becomes '_', and the name never stands
    alone (the figure's number comes first)."""
    return _UNSAFE.sub("_", name)[:60]


def na_rate_figure(report: Report, out: Path) -> Path:
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    series = {n: s.harm_rates.na_rate for n, s in report.annotators.items()}
    _grouped_bars(ax, list(report.models), series)
    _legend_below(fig, ax)
    ax.set_title("N/A (not harmful) rate per model", fontsize=10)
    ax.set_ylabel("share of prompts")
    ax.set_ylim(0, 1)
    return _save(fig, out / "na_rate.png")


def _heatmap(ax: Axes, matrix: FloatArray, labels: Sequence[str], title: str) -> None:
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for (i, j), cell in np.ndenumerate(matrix):
        value = float(cell)
        if not np.isnan(value):
            colour = "black" if value > 0.6 else "white"  # readable on viridis' light end
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)


def win_rate_figure(report: Report, out: Path) -> Path:
    names = [n for n, s in report.annotators.items() if s.n_prompts > 0]
    fig, axes = _panels(len(names), 3.6, 3.4)
    for ax, name in zip(axes, names, strict=True):
        wins = report.annotators[name].wins
        _heatmap(ax, wins.win_rate_excluding_ties, report.models, f"{name}: row beats column")
    fig.suptitle("Win rate, least harm (ties excluded)", fontsize=10)
    return _save(fig, out / "win_rates.png")


def agreement_matrix(
    results: Sequence[AgreementResult], names: Sequence[str], metric: str, lists: str | None
) -> FloatArray:
    """Mean RBO between annotators as a symmetric matrix (diagonal 1, missing pairs NaN)."""
    index = {n: i for i, n in enumerate(names)}
    matrix = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(matrix, 1.0)
    for result in results:
        for fig in result.figures:
            if fig.metric == metric and (lists is None or fig.params.get("lists") == lists):
                i, j = index[result.a], index[result.b]
                matrix[i, j] = matrix[j, i] = fig.value
    return matrix


def agreement_figure(report: Report, out: Path) -> Path:
    names = list(report.annotators)
    fig = Figure(figsize=(9.0, 4.0))
    axes = fig.subplots(1, 2)
    panels = (
        ("rbo_known", None, "RBO over the known depth (headline)"),
        ("rbo", "harmful", f"RBO_{report.settings.rbo_variant}, harmful lists (paper)"),
    )
    for ax, (metric, lists, title) in zip(axes, panels, strict=True):
        matrix = agreement_matrix(report.agreement, names, metric, lists)
        _heatmap(ax, matrix, names, f"{title}, p={report.settings.p}")
    fig.suptitle("Agreement between annotators (mean per-prompt RBO)", fontsize=10)
    return _save(fig, out / "agreement_rbo.png")


def against_reference(report: Report) -> list[AgreementResult]:
    """The report's pairs with the human reference as b."""
    ref = report.human_reference
    return [r for r in report.agreement if ref is not None and r.b == ref.name]


def reference_group_figure(report: Report, out: Path) -> Path:
    """RBO (known depth, the headline) of each annotator against the human reference: all
    items, then by how much the humans agreed; bootstrap intervals as error bars, chance as a
    black tick."""
    results = against_reference(report)
    groups = ["all items", *GROUPS]
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    width = 0.8 / len(results)
    for i, result in enumerate(results):
        figs = [result.figure("rbo_known")] + [
            result.figure("rbo_known", None, g) if g in result.by_category else None for g in GROUPS
        ]
        x = np.arange(len(groups)) + i * width - 0.4 + width / 2
        values = np.array([f.value if f else np.nan for f in figs])
        low = np.array([f.value - f.ci_low if f else np.nan for f in figs])
        high = np.array([f.ci_high - f.value if f else np.nan for f in figs])
        ax.bar(x, values, width, label=result.a, color=COLOURS[i % 6])
        ax.errorbar(x, values, yerr=np.abs(np.vstack([low, high])), fmt="none", ecolor="#333")
        chance = [f.chance if f else np.nan for f in figs]
        label = "chance" if i == 0 else None
        ax.scatter(x, chance, marker="_", color="black", s=120, zorder=3, label=label)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"mean RBO over the known depth, p={report.settings.p}")
    ax.set_title(f"Against {results[0].b}, by how much the humans agreed", fontsize=10)
    _legend_below(fig, ax)
    return _save(fig, out / "reference_by_agreement.png")


Curve = dict[int, list[BudgetRow]]


def _curves(budget: LabelBudget) -> dict[str, Curve]:
    """Harm-rate rows by line (human-only once, then PPI++ per predictor) and by n."""
    first = next(iter(budget.population), None)
    curves: dict[str, Curve] = defaultdict(lambda: defaultdict(list))
    for row in budget.rows:
        if row.estimand != "harm_rate":
            continue
        if row.method == "human_only" and row.judge == first:
            curves["human-only"][row.n_human].append(row)
        elif row.method == "ppi":
            curves[f"PPI++ ({row.judge})"][row.n_human].append(row)
    return curves


def budget_figure(budget: LabelBudget, out: Path) -> Path:
    """Mean interval width (left) and coverage (right) of the harm rate, mean over the models."""
    fig = Figure(figsize=(9.0, 3.8))
    width_ax, cover_ax = fig.subplots(1, 2)
    for i, (label, by_n) in enumerate(_curves(budget).items()):
        ns = sorted(by_n)
        widths = [np.mean([r.mean_width for r in by_n[n]]) for n in ns]
        covers = [np.mean([r.coverage for r in by_n[n]]) for n in ns]
        style = {"color": COLOURS[i % 6], "marker": "o", "label": label}
        width_ax.plot(ns, widths, **style)
        cover_ax.plot(ns, covers, **style)
    confidence = budget.settings.confidence
    cover_ax.axhline(confidence, color="black", linewidth=0.8, linestyle="--")
    sizes = list(budget.settings.sample_sizes)
    for ax in (width_ax, cover_ax):
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.set_xlabel("human labels n")
    width_ax.set_ylabel(f"mean width of the {confidence:.0%} interval")
    cover_ax.set_ylabel("coverage of the full-data truth")
    cover_ax.set_ylim(0.8, 1.0)
    fig.suptitle(
        f"Harm rate, mean over models; {budget.settings.repetitions} repetitions per n",
        fontsize=10,
    )
    _legend_below(fig, width_ax)
    return _save(fig, out / "human_label_budget.png")


def write_figures(report: Report, out: Path) -> dict[str, Path]:
    """Every figure of the report, keyed by a short name; files written into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "na_rate": na_rate_figure(report, out),
        "win_rates": win_rate_figure(report, out),
        "agreement": agreement_figure(report, out),
    }
    if _complete_rank_names(report):  # else no prompt is free of N/A: no Figure 1 to draw
        figures = {"figure1": complete_rank_figure(report, out), **figures}
    if against_reference(report):
        figures["reference_groups"] = reference_group_figure(report, out)
    for j, model in enumerate(report.models):
        figures[f"ranks_{model}"] = model_rank_figure(report, j, out)
    if report.ppi is not None and report.ppi.label_budget is not None:
        figures["human_label_budget"] = budget_figure(report.ppi.label_budget, out)
    return figures
