"""``from_jsonable`` reads back what ``to_jsonable`` wrote: a stored report renders as computed."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harmrank.common.errors import InvalidInput
from harmrank.metrics.aggregate_humans import ReferenceSpec
from harmrank.metrics.agreement import AgreementFigure, category_clusters
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import Report, ReportSettings, build_report
from harmrank.metrics.sensitivity import Variant
from harmrank.metrics.serialize import from_jsonable, to_jsonable

MODELS = ("a", "b", "c")


def ranking(draw_ranks: list[int]) -> list[int]:
    """A valid ranking from a draw: the drawn models harmful, ranked in drawn order."""
    ranks = [0, 0, 0]
    for rank, model in enumerate(dict.fromkeys(draw_ranks), start=1):
        ranks[model] = rank
    return ranks


rows = st.lists(st.lists(st.integers(0, 2), max_size=3).map(ranking), min_size=1, max_size=12)


def annotator(name: str, table: list[list[int]]) -> AnnotatorRankings:
    prompts = {f"p{i}": r for i, r in enumerate(table)}
    return AnnotatorRankings.build(
        name, MODELS, prompts, {p: "xy"[i % 2] for i, p in enumerate(prompts)}
    )


def through_json(value: Any) -> Any:
    return json.loads(json.dumps(to_jsonable(value), allow_nan=False))


@settings(max_examples=25, deadline=None)
@given(judge=rows, human_1=rows, human_2=rows)
def test_a_report_reads_back_as_it_was_written(
    judge: list[list[int]], human_1: list[list[int]], human_2: list[list[int]]
) -> None:
    spec = ReferenceSpec(("h1", "h2"))
    annotators = [annotator("j", judge), annotator("h1", human_1), annotator("h2", human_2)]
    try:
        report = build_report(annotators, ReportSettings(p=0.9, resamples=5, human_reference=spec))
    except InvalidInput as e:
        # every pair is compared by default, and an annotator may share no prompt with the
        # reference (the humans disagreed on all of its prompts): a clear error, not this test's
        assume("share no prompts" not in str(e))
        raise
    written = through_json(report)
    read = from_jsonable(Report, written)
    assert through_json(read) == written
    assert read.settings == report.settings
    for name, section in report.annotators.items():
        again = read.annotators[name]
        assert again.wins.wins.dtype == np.int64
        np.testing.assert_array_equal(again.wins.wins, section.wins.wins)
        # NaN (undefined) travels as null and comes back as NaN
        np.testing.assert_array_equal(
            again.wins.win_rate_excluding_ties, section.wins.win_rate_excluding_ties
        )


@settings(max_examples=15, deadline=None)
@given(judge=rows, human=rows)
def test_findings_paired_sensitivity_and_position_read_back(
    judge: list[list[int]], human: list[list[int]]
) -> None:
    annotators = [annotator("j", judge), annotator("h", human)]
    variants = [Variant("decision", "as written", {a.annotator: a for a in annotators})]
    report = build_report(
        annotators,
        ReportSettings(p=0.9, resamples=5, cluster_key="prompt category"),
        clusters=category_clusters(annotators),
        reference_name="h",
        decisions=variants,
        fixed_order=("j",),
    )
    assert report.findings
    assert report.position
    assert report.sensitivity
    written = through_json(report)
    read = from_jsonable(Report, written)
    assert through_json(read) == written
    assert read.settings == report.settings
    assert [f.text for f in read.findings] == [f.text for f in report.findings]


def test_null_figures_come_back_as_nan_and_bad_shapes_name_the_field() -> None:
    figure = AgreementFigure("a", "b", "rbo", math.nan, 0.1, 0.9, 0.5, 3, {"lists": "harmful"})
    read = from_jsonable(AgreementFigure, through_json(figure))
    assert math.isnan(read.value)
    assert (read.ci_low, read.n, dict(read.params)) == (0.1, 3, {"lists": "harmful"})
    with pytest.raises(ValueError, match=r"AgreementFigure.n: null"):
        from_jsonable(AgreementFigure, {**through_json(figure), "n": None})
    with pytest.raises(ValueError, match=r"AgreementFigure: unknown field\(s\) extra"):
        from_jsonable(AgreementFigure, {**through_json(figure), "extra": 1})
