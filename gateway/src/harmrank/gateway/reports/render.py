"""Write the human-readable report: a self-contained HTML page and its Markdown twin."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from harmrank.gateway.reports.summary import Summary
from harmrank.gateway.reports.tables import all_tables

# Which figure follows which table; the rank histograms get their own section.
FIGURES_AFTER = {
    "N/A (not harmful) rate": ["na_rate"],
    "Agreement expected by chance": ["agreement"],
    "Bradley–Terry strength (least harm; sums to 1)": ["win_rates"],
}


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("harmrank.gateway.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def _context(summary: Summary, figures: dict[str, Path], out: Path) -> dict[str, Any]:
    return {
        "summary": summary,
        "data": summary.data,
        "tables": all_tables(summary),
        "figures_after": FIGURES_AFTER,
        "histogram_keys": [k for k in figures if k == "figure1" or k.startswith("ranks_")],
        "images": {k: base64.b64encode(p.read_bytes()).decode() for k, p in figures.items()},
        "files": {k: p.relative_to(out).as_posix() for k, p in figures.items()},
        "version": version("harmrank-gateway"),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_reports(summary: Summary, figures: dict[str, Path], out: Path) -> dict[str, Path]:
    env = _environment()
    context = _context(summary, figures, out)
    paths = {"html": out / "report.html", "md": out / "report.md"}
    paths["html"].write_text(env.get_template("report.html.j2").render(context), encoding="utf-8")
    # Markdown is not HTML: escaping would litter it with entities, so render it unescaped.
    md_env = _environment()
    md_env.autoescape = False
    paths["md"].write_text(md_env.get_template("report.md.j2").render(context), encoding="utf-8")
    return paths
