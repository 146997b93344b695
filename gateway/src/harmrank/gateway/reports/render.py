"""Write the human-readable report: a self-contained HTML page and its Markdown twin."""

from __future__ import annotations

import base64
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from harmrank.gateway.reports.coverage_table import coverage_table
from harmrank.gateway.reports.decision_tables import decision_tables
from harmrank.gateway.reports.explore_links import histogram_links, table_links
from harmrank.gateway.reports.figures import write_figures
from harmrank.gateway.reports.summary import Summary
from harmrank.gateway.reports.tables import BY_GROUP_TITLE, HARM_STRENGTH_TITLE, all_tables
from harmrank.gateway.reports.tables_ppi import BUDGET_TITLE, ppi_tables
from harmrank.metrics.aggregate_humans import ReferenceSummary
from harmrank.metrics.report import Report

# Which figure follows which table; the rank histograms get their own section.
FIGURES_AFTER = {
    "N/A (not harmful) rate": ["na_rate"],
    "Agreement expected by chance": ["agreement"],
    HARM_STRENGTH_TITLE: ["win_rates"],
    BY_GROUP_TITLE: ["reference_groups"],
    BUDGET_TITLE: ["human_label_budget"],
}


@dataclass(frozen=True)
class Page:
    """What a report says about itself: titles, the content warning, and facts of its origin."""

    title: str
    heading: str
    warning: str = (
        "Prompts and responses of a harm evaluation may be offensive. This report shows "
        "figures only, no texts."
    )
    intro: str = ""
    facts_title: str = "About"
    facts: tuple[tuple[str, str], ...] = ()
    explore: str | None = None
    """The explorer's URL for this report's data: figures then link to their samples."""


STUDY_PAGE = Page(
    title="harmrank: reproduction of the LLM-Harm study",
    heading="Reproduction: Can LLMs rank the harmfulness of smaller LLMs?",
    warning="The study's prompts and responses are offensive by design. This report shows "
    "figures only, no texts.",
)
"""The reproduction's report (``harmrank reproduce``)."""


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("harmrank.gateway.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def prompts_text(summary: Summary) -> str:
    """The header's count of prompts, and why the figures use fewer."""
    ranked = ", ".join(f"{n} {k}" for k, n in summary.n_prompts_ranked.items())
    excluded = (
        " (the rest had every ranking excluded at import: see the import report)"
        if "import_report" in summary.data
        else ""
    )
    return (
        f"{summary.n_prompts} distinct prompts; prompts ranked per annotator: {ranked}"
        f"{excluded}. Each agreement figure is computed over the prompts both of its annotators "
        "ranked, or fewer where the figure is undefined; its n is in the tables."
    )


def _context(
    summary: Summary,
    figures: dict[str, Path],
    page: Page,
    reference: ReferenceSummary | None = None,
) -> dict[str, Any]:
    return {
        "page": page,
        "summary": summary,
        "prompts_text": prompts_text(summary),
        "data": summary.data,
        "tables": [
            *([missing] if (missing := coverage_table(summary)) else []),
            *all_tables(summary, reference),
            *decision_tables(summary),
            *ppi_tables(summary),
        ],
        "figures_after": FIGURES_AFTER,
        "links": table_links(summary, page.explore),
        "histogram_links": histogram_links(summary, page.explore),
        "histogram_keys": [k for k in figures if k == "figure1" or k.startswith("ranks_")],
        "images": {k: base64.b64encode(p.read_bytes()).decode() for k, p in figures.items()},
        "version": version("harmrank-gateway"),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def render_html(
    summary: Summary,
    figures: dict[str, Path],
    page: Page = STUDY_PAGE,
    reference: ReferenceSummary | None = None,
) -> str:
    """The self-contained HTML page: every figure embedded as a data URL."""
    context = _context(summary, figures, page, reference)
    return _environment().get_template("report.html.j2").render(context)


def html_report(report: Report, summary: Summary, page: Page) -> str:
    """Figures and HTML in one go, the figures in a scratch folder (CPU-bound: a thread's job)."""
    with tempfile.TemporaryDirectory(prefix="harmrank-report-") as scratch:
        figures = write_figures(report, Path(scratch))
        return render_html(summary, figures, page, report.human_reference)


def write_reports(
    summary: Summary, figures: dict[str, Path], out: Path, page: Page = STUDY_PAGE
) -> dict[str, Path]:
    context = _context(summary, figures, page)
    context["files"] = {k: p.relative_to(out).as_posix() for k, p in figures.items()}
    paths = {"html": out / "report.html", "md": out / "report.md"}
    html = _environment().get_template("report.html.j2").render(context)
    paths["html"].write_text(html, encoding="utf-8")
    # Markdown is not HTML: escaping would litter it with entities, so render it unescaped.
    md_env = _environment()
    md_env.autoescape = False
    paths["md"].write_text(md_env.get_template("report.md.j2").render(context), encoding="utf-8")
    return paths
