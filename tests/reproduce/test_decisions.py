"""The study's two data decisions, recomputed here independently of the report code.

The second computation parses the raw values itself (group 10's rankings as written; the
judges' raw answers), computes Kendall's tau-b with scipy and exact match by hand, and must
agree with the report's ``sensitivity`` figures; the issue's published numbers are checked too.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

from harmrank.gateway.reports.summary import Summary, build_summary
from harmrank.gateway.study import import_study
from harmrank.gateway.study.decisions import GROUP_DECISION, TIES_DECISION, direction_evidence
from harmrank.gateway.study.decisions import variants as decision_variants
from harmrank.gateway.study.records import HUMAN, StudyImport
from harmrank.metrics.contributions import harmful_items, rbo_per_prompt
from harmrank.metrics.params import RBOSettings
from harmrank.metrics.rbo_known import rbo_known_batch
from harmrank.metrics.report import ReportSettings, build_report
from harmrank.reproduce.pipeline import ANNOTATORS, PAIRS

Ranks = tuple[int, ...]


@pytest.fixture(scope="module")
def study(paper_data: Path) -> StudyImport:
    return import_study(paper_data)


@pytest.fixture(scope="module")
def summary(study: StudyImport) -> Summary:
    stored = {name: study.rankings(name) for name in ANNOTATORS}
    report = build_report(
        list(stored.values()),
        ReportSettings(p=0.9, resamples=0),
        pairs=PAIRS,
        reference_name=HUMAN,
        decisions=decision_variants(study, stored),
        concordance=direction_evidence(study, stored),
        fixed_order=("gpt4o", "claude", "llama"),
    )
    return build_summary(report, n_prompts=len(study.prompts), data={})


# ------------------------------------------------------------------ the independent computation


def parse_as_written(raw: str) -> Ranks:
    """A raw ranking like "3, N/A,1" or "[2, 1, NA]": numbers kept, N/A = 0, restarted 1..k."""
    tokens = [t.strip(" '\"") for t in raw.strip().strip("[]").split(",")]
    values = [0 if t.upper() in {"N/A", "NA"} else int(t) for t in tokens]
    order = sorted({v for v in values if v})
    return tuple(order.index(v) + 1 if v else 0 for v in values)


def raw_tie(answer: str | None) -> bool:
    numbers = re.findall(r":\s*(\d+)", answer or "")
    return len(numbers) != len(set(numbers))


def mean_tau(a: dict[str, Ranks], b: dict[str, Ranks]) -> tuple[float, int]:
    values = []
    for prompt in a.keys() & b.keys():
        with warnings.catch_warnings():  # scipy warns on a constant input: tau undefined
            warnings.simplefilter("ignore")
            tau = kendalltau(a[prompt], b[prompt], variant="b").statistic
        if not math.isnan(tau):
            values.append(tau)
    return sum(values) / len(values), len(values)


def exact(a: dict[str, Ranks], b: dict[str, Ranks]) -> float:
    shared = a.keys() & b.keys()
    return sum(a[p] == b[p] for p in shared) / len(shared)


def rows(study: StudyImport, name: str) -> dict[str, Ranks]:
    return {p: a.ranks for p, a in study.selected(name).items()}


def humans_as_written(study: StudyImport) -> dict[str, Ranks]:
    out = rows(study, HUMAN)
    for prompt, a in study.selected(HUMAN).items():
        if a.group == 10:
            out[prompt] = parse_as_written(a.raw_ranking)
    return out


def untied(study: StudyImport, judge: str) -> dict[str, Ranks]:
    return {p: a.ranks for p, a in study.selected(judge).items() if not raw_tie(a.raw_output)}


def reported(summary: Summary, decision: str, choice: str, a: str, b: str, metric: str) -> float:
    (entry,) = [
        e
        for e in summary.sensitivity
        if (e.decision, e.choice, e.a, e.b, e.metric) == (decision, choice, a, b, metric)
    ]
    assert entry.value is not None
    return entry.value


# ------------------------------------------------------------------ the checks


@pytest.mark.parametrize("judge", ["gpt4o", "claude", "llama"])
def test_group_10_as_written_agrees_with_a_second_computation(
    study: StudyImport, summary: Summary, judge: str
) -> None:
    humans, ranks = humans_as_written(study), rows(study, judge)
    tau, _ = mean_tau(ranks, humans)
    got = reported(summary, GROUP_DECISION, "as written", judge, HUMAN, "kendall_tau_b")
    assert got == pytest.approx(tau, abs=1e-12)
    got = reported(summary, GROUP_DECISION, "as written", judge, HUMAN, "exact_match")
    assert got == pytest.approx(exact(ranks, humans), abs=1e-12)


@pytest.mark.parametrize("judge", ["gpt4o", "claude", "llama"])
def test_tied_answers_excluded_agrees_with_a_second_computation(
    study: StudyImport, summary: Summary, judge: str
) -> None:
    humans, ranks = rows(study, HUMAN), untied(study, judge)
    tau, _ = mean_tau(ranks, humans)
    got = reported(summary, TIES_DECISION, "excluded", judge, HUMAN, "kendall_tau_b")
    assert got == pytest.approx(tau, abs=1e-12)


def test_the_defaults_are_the_authors_choices_and_the_published_numbers(
    summary: Summary, study: StudyImport
) -> None:
    default = "reversed, as the authors did (default)"
    main = {(e.a, e.b, e.metric): e.value for e in summary.agreement if e.category is None}
    for a, b in PAIRS:
        tau = reported(summary, GROUP_DECISION, default, a, b, "kendall_tau_b")
        assert tau == main[a, b, "kendall_tau_b"]
    as_written = "as written"
    assert reported(summary, GROUP_DECISION, default, "gpt4o", HUMAN, "kendall_tau_b") == (
        pytest.approx(0.480, abs=5e-4)
    )
    assert reported(summary, GROUP_DECISION, as_written, "gpt4o", HUMAN, "kendall_tau_b") == (
        pytest.approx(0.508, abs=5e-4)
    )
    assert reported(summary, GROUP_DECISION, as_written, "claude", HUMAN, "kendall_tau_b") == (
        pytest.approx(0.504, abs=1e-3)
    )
    excluded = reported(summary, TIES_DECISION, "excluded", "llama", HUMAN, "kendall_tau_b")
    assert excluded == pytest.approx(0.402, abs=5e-4)
    tied = study.report()["tied_raw_answers"]
    assert tied == {"claude": 0, "gpt4o": 1, "llama": 19}


def test_direction_evidence_counts_concordant_pairs(summary: Summary) -> None:
    counts = {(c.a, c.b): (c.concordant, c.discordant) for c in summary.concordance}
    assert counts["group 10 as imported (reversed)", "gpt4o"] == (8, 16)
    assert counts["group 10 as written", "gpt4o"] == (16, 8)
    assert counts["group 10 as imported (reversed)", "claude"] == (13, 27)
    assert counts["group 10 as written", "claude"] == (27, 13)
    ratio_others = counts["the other groups, pooled", "gpt4o"]
    assert ratio_others[0] > ratio_others[1]  # the other groups agree with gpt4o's direction
    p = {(c.a, c.b): c.p_value for c in summary.concordance}
    assert p["group 10 as written", "claude"] == pytest.approx(0.0385, abs=1e-3)


def test_the_parser_of_the_second_computation() -> None:
    assert parse_as_written("3, N/A,1") == (2, 0, 1)
    assert parse_as_written("[2, 1, 'NA']") == (2, 1, 0)
    assert raw_tie("Content A: 1\nContent B: 1\nContent C: N/A")
    assert not raw_tie("Content A: 3\nContent B: 2\nContent C: N/A")


def test_position_of_the_study_judges(summary: Summary) -> None:
    bias = {b.annotator: b for b in summary.position_bias}
    assert set(bias) == {"gpt4o", "claude", "llama"}
    assert bias["llama"].detected
    assert "later response on top 141 times and the earlier 25 times" in bias["llama"].detail
    assert "earlier 117" in bias["claude"].detail  # Claude leans the other way
    llama = next(f for f in summary.findings if f.text.startswith("llama, models by harm"))
    assert "Warning: llama's rankings lean by position" in llama.text
    assert "position.llama" in llama.evidence


def test_the_headline_rbo_never_rewards_disagreement_on_the_study(study: StudyImport) -> None:
    a, b = rows(study, "gpt4o"), rows(study, HUMAN)
    shared = sorted(a.keys() & b.keys())
    x = np.array([a[p] for p in shared])
    y = np.array([b[p] for p in shared])
    differ = ((x > 0) != (y > 0)).any(axis=1)
    paper = rbo_per_prompt(x, y, "harmful", RBOSettings(0.9))
    headline = rbo_known_batch(harmful_items(x), harmful_items(y), 0.9)
    assert (int(differ.sum()), int((paper[differ] == 1.0).sum())) == (606, 172)
    assert (headline[differ] < 1.0).all()
