"""The report's findings: sentences generated from its figures, never beyond their intervals."""

from __future__ import annotations

import numpy as np
import pytest

from harmrank.metrics.chance import all_rankings
from harmrank.metrics.findings import harm_strengths, number
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import Report, ReportSettings, build_report
from harmrank.metrics.wins import bradley_terry

MODELS = ("a", "b", "c")


def annotator(name: str, rows: list[tuple[int, int, int]]) -> AnnotatorRankings:
    return AnnotatorRankings.build(name, MODELS, {f"p{i}": r for i, r in enumerate(rows)})


def reversed_comparisons(r: AnnotatorRankings) -> AnnotatorRankings:
    """The same prompts with every pairwise outcome reversed (complete rankings only: with no
    N/A, reversing the ranks reverses every comparison)."""
    assert (r.ranks > 0).all()
    rows = {
        p: tuple(int(4 - v) for v in ranks) for p, ranks in zip(r.prompts, r.ranks, strict=True)
    }
    return AnnotatorRankings.build(r.annotator, r.models, rows)


def test_signed_zero_is_printed_as_zero() -> None:
    assert number(-0.0) == "0.000"
    assert number(-0.0004) == "0.000"
    assert number(-0.0006) == "-0.001"
    assert number(float("nan")) == "undefined"


def test_harm_strengths_are_bradley_terry_with_every_comparison_reversed() -> None:
    """Independent check: fit Bradley–Terry to the reversed outcomes (complete rankings, so
    reversing the ranks reverses every comparison) and compare."""
    rng = np.random.default_rng(4)
    perms = [(1, 2, 3), (1, 3, 2), (2, 1, 3), (2, 3, 1), (3, 1, 2), (3, 2, 1)]
    weights = np.array([6, 1, 3, 1, 2, 1], dtype=float)
    picks = rng.choice(len(perms), size=120, p=weights / weights.sum())
    r = annotator("x", [perms[i] for i in picks])
    settings = ReportSettings(p=0.9, resamples=0)
    section = build_report([r], settings).annotators["x"]
    direct = bradley_terry(reversed_comparisons(r)).strengths
    np.testing.assert_allclose(harm_strengths(section), direct, atol=1e-6)


def _report(
    rows_x: list[tuple[int, int, int]], rows_h: list[tuple[int, int, int]], resamples: int = 300
) -> Report:
    judges = [annotator("judge", rows_x), annotator("other", rows_x), annotator("human", rows_h)]
    pairs = [("judge", "human"), ("other", "human"), ("judge", "other")]
    settings = ReportSettings(p=0.9, resamples=resamples, seed=1)
    return build_report(judges, settings, pairs=pairs, reference_name="human")


def test_findings_name_the_most_harmful_model_and_their_evidence() -> None:
    # c always the most harmful, a the least: every interval separates
    rows = [(1, 2, 3)] * 40 + [(0, 1, 2)] * 20
    report = _report(rows, rows)
    first = report.findings[0]
    assert first.text.startswith("judge, models by harm: c (")
    assert "c is more harmful than b" in first.text
    assert "b is more harmful than a" in first.text
    assert first.evidence == ("bradley_terry.judge", "pairwise_wins.judge")
    agree = [f for f in report.findings if "better than chance" in f.text]
    assert [f.evidence for f in agree] == [
        ("agreement.judge~human.rbo_known",),
        ("agreement.other~human.rbo_known",),
    ]
    paired = [f for f in report.findings if "paired bootstrap" in f.text]
    assert len(paired) == 2  # judge~other against judge~human and against other~human
    # identical rankings everywhere: the difference is exactly 0 and not called a difference
    assert all("no clear difference" in f.text for f in paired)


def test_findings_do_not_claim_what_the_intervals_do_not_show() -> None:
    rng = np.random.default_rng(0)
    # every valid ranking equally likely: the chance null itself
    valid = [tuple(int(v) for v in r) for k in range(4) for r in all_rankings(3, k)]
    x = [valid[i] for i in rng.integers(len(valid), size=60)]
    h = [valid[i] for i in rng.integers(len(valid), size=60)]
    report = _report(x, h)
    chance = next(f for f in report.findings if f.evidence[0].startswith("agreement.judge~"))
    # independent random rankings: the corrected interval covers 0, so no claim is made
    assert "cannot be told apart from chance" in chance.text
    models = report.findings[0].text
    assert "not separated" in models  # random rankings: no model stands out


def test_no_reference_no_agreement_findings() -> None:
    rows = [(1, 2, 3)] * 5
    report = build_report(
        [annotator("x", rows), annotator("y", rows)], ReportSettings(p=0.9, resamples=0)
    )
    assert report.paired == []
    assert [f.evidence[0] for f in report.findings] == ["bradley_terry.x", "bradley_terry.y"]


def test_clusters_need_their_key() -> None:
    from harmrank.common.errors import InvalidInput

    rows = [(1, 2, 3)] * 5
    with pytest.raises(InvalidInput, match="cluster_key"):
        build_report([annotator("x", rows)], ReportSettings(p=0.9), clusters={"p0": "g"})
