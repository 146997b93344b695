"""Figure files are named by the report, never by a caller's text alone."""

from __future__ import annotations

from pathlib import Path

from harmrank.gateway.reports.figures import write_figures
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings, build_report

MODELS = ("org/a", "../../b", "c\\d")


def test_model_names_with_separators_stay_inside_the_folder(tmp_path: Path) -> None:
    rows = {"p1": [1, 2, 0], "p2": [0, 1, 2], "p3": [2, 0, 1]}
    judges = [AnnotatorRankings.build(name, MODELS, rows) for name in ("j1", "j2")]
    report = build_report(judges, ReportSettings(p=0.9, resamples=5, seed=1))
    out = tmp_path / "figures"
    figures = write_figures(report, out)
    ranks = [path for key, path in figures.items() if key.startswith("ranks_")]
    assert len(ranks) == 3
    for path in figures.values():
        assert path.parent == out
        assert path.is_file()
    assert sorted(p.name for p in ranks) == [
        "figure_ranks_1_org_a.png",
        "figure_ranks_2_.._.._b.png",
        "figure_ranks_3_c_d.png",
    ]
