"""A judge with missing rankings is marked with the count in every table that names it, and
the report opens its tables with what is missing and which tasks failed."""

from __future__ import annotations

import numpy as np

from harmrank.gateway.reports.coverage_table import COVERAGE_TITLE, coverage_table
from harmrank.gateway.reports.decision_tables import position_table
from harmrank.gateway.reports.render import STUDY_PAGE, html_report
from harmrank.gateway.reports.summary import Summary, build_summary
from harmrank.gateway.reports.tables import all_tables
from harmrank.metrics.coverage import RunFacts, TaskFailures
from harmrank.metrics.position import Presented
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import Report, ReportSettings, build_report

MODELS = ("a", "b", "c")
ROWS = [(1, 2, 3), (0, 1, 2), (2, 1, 0), (1, 0, 2), (3, 1, 2), (0, 0, 1)]
FACTS = RunFacts(
    expected={"whole": 6, "part": 6, "none": 6},
    failures=(
        TaskFailures("judge", "part", 2, "upstream_timeout: judge answered 504"),
        TaskFailures("judge", "none", 6, "upstream_rejected: anthropic answered 400: no"),
        TaskFailures("generate", "c", 1, "upstream_error: tgi answered 500"),
    ),
)


def summary_of(facts: RunFacts | None = FACTS) -> tuple[Report, Summary]:
    judges = [
        AnnotatorRankings.build("whole", MODELS, {f"p{i}": r for i, r in enumerate(ROWS)}),
        AnnotatorRankings.build("part", MODELS, {f"p{i}": r for i, r in enumerate(ROWS[:4])}),
    ]
    report = build_report(judges, ReportSettings(p=0.9, resamples=0), run=facts)
    return report, build_summary(report, n_prompts=6, data={"source": "a test"})


def test_the_marked_judge_and_the_coverage_table() -> None:
    report, summary = summary_of()
    assert summary.label("part") == "part (2 of 6 missing)"
    assert summary.label("whole") == "whole"
    tables = {t.title: t for t in all_tables(summary)}
    assert [r[0] for r in tables["N/A (not harmful) rate"].rows] == [
        "whole",
        "part (2 of 6 missing)",
    ]
    agreement = next(t for title, t in tables.items() if title.startswith("Agreement (value"))
    assert agreement.rows[0][0] == "whole vs part (2 of 6 missing)"
    assert "Pairwise wins, least harm (part (2 of 6 missing))" in tables
    table = coverage_table(summary)
    assert table is not None
    assert table.rows == [
        ["whole", "6", "6", "0", "0", "–"],
        ["part", "6", "4", "2", "2", "upstream_timeout: judge answered 504"],
        ["none", "6", "0", "6", "6", "upstream_rejected: anthropic answered 400: no"],
        ["c (generate)", "–", "–", "–", "1", "upstream_error: tgi answered 500"],
    ]
    html = html_report(report, summary, STUDY_PAGE)
    assert html.index(COVERAGE_TITLE) < html.index("N/A (not harmful) rate")
    assert "none produced no rankings: 0 of 6 prompts ranked" in html


def test_a_report_without_run_facts_has_no_coverage_table() -> None:
    _, summary = summary_of(None)
    assert coverage_table(summary) is None
    assert position_table(summary) is None
    assert summary.label("part") == "part"


def test_the_position_table_of_a_run_states_its_test_n_and_design() -> None:
    rng = np.random.default_rng(0)
    positions = np.array([rng.permutation(3) for _ in range(30)])
    ranks = 3 - positions  # whatever was shown first is called the most harmful
    shown = Presented("whole", ranks, positions, 15)
    _, summary = summary_of(RunFacts(expected={"whole": 6}, presented=(shown,)))
    table = position_table(summary)
    assert table is not None
    assert table.rows[0] == ["whole", "A", "N/A: 0, 1: 0, 2: 0, 3: 30", table.rows[0][3]]
    assert table.rows[0][3].endswith("(position effect)")
    assert "Friedman test of position" in table.note
    assert "(n = 30): 30 rankings of 15 prompts" in table.note
    assert "seeded random orders" in table.note
    assert "one order (A, B, C" not in table.note  # the study's caveat is not this design's
