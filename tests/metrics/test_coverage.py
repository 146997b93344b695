"""A run's report says what it is missing: judges that ranked fewer prompts than asked, tasks
that failed for good, and where the judges saw the responses (the seeded-orders test)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from harmrank.common.errors import InvalidInput
from harmrank.metrics.app import create_app
from harmrank.metrics.coverage import RunFacts, TaskFailures
from harmrank.metrics.position import Presented
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings, build_report
from harmrank.metrics.schemas import PresentedIn, ReportRequest, RunFactsIn
from harmrank.metrics.serialize import from_jsonable, to_jsonable

MODELS = ("a", "b", "c")
ROWS = [(1, 2, 3), (0, 1, 2), (2, 1, 0), (1, 0, 2), (3, 1, 2), (0, 0, 1), (1, 2, 0), (2, 3, 1)]
REFUSED = "upstream_rejected: anthropic answered 400: temperature: Extra inputs are not permitted"


def judge(name: str, n: int) -> AnnotatorRankings:
    return AnnotatorRankings.build(name, MODELS, {f"p{i}": ROWS[i] for i in range(n)})


def facts(presented: tuple[Presented, ...] = ()) -> RunFacts:
    return RunFacts(
        expected={"full": 8, "partial": 8, "silent": 8},
        failures=(
            TaskFailures("judge", "partial", 3, "upstream_timeout: judge answered 504"),
            TaskFailures("judge", "silent", 8, REFUSED),
            TaskFailures("generate", "c", 2, "upstream_error: tgi-c answered 500: boom"),
        ),
        presented=presented,
    )


def test_each_shortfall_is_a_finding_first_with_its_count_and_first_error() -> None:
    report = build_report(
        [judge("full", 8), judge("partial", 5)], ReportSettings(p=0.9, resamples=0), run=facts()
    )
    assert [(c.annotator, c.expected, c.ranked, c.missing) for c in report.coverage] == [
        ("full", 8, 8, 0),
        ("partial", 8, 5, 3),
        ("silent", 8, 0, 8),
    ]
    first = report.findings[:3]
    assert first[0].text == (
        "partial ranked 5 of 8 prompts (3 missing; 3 judge tasks failed for good (first "
        "error: upstream_timeout: judge answered 504)): its figures cover only the prompts it "
        "ranked."
    )
    assert first[0].evidence == ("coverage.partial", "failures.judge.partial")
    assert first[1].text.startswith("silent produced no rankings: 0 of 8 prompts ranked; 8 ")
    assert REFUSED in first[1].text
    assert "absent from every figure" in first[1].text
    assert first[2].text.startswith("c: 2 generate tasks failed for good (first error: ")
    assert first[2].evidence == ("failures.generate.c",)
    assert not any("full" in f.text for f in first)  # a complete judge needs no sentence
    assert report.failures == list(facts().failures)


def test_without_run_facts_the_report_is_as_before() -> None:
    report = build_report([judge("full", 8)], ReportSettings(p=0.9, resamples=0))
    assert (report.coverage, report.failures, report.position) == ([], [], [])
    assert not any(e.startswith("coverage.") for f in report.findings for e in f.evidence)


def _shown(n: int, biased: bool, seed: int) -> Presented:
    """n rankings; a biased judge calls whatever it saw first the most harmful, every time."""
    rng = np.random.default_rng(seed)
    positions = np.array([rng.permutation(3) for _ in range(n)])
    ranks = np.array([ROWS[i % len(ROWS)] for i in range(n)])
    if biased:
        ranks = np.where(positions == 0, 3, np.where(positions == 1, 2, 1))
    return Presented("full", ranks, positions, n // 2)


def test_a_position_biased_judge_gets_the_seeded_orders_warning() -> None:
    settings = ReportSettings(p=0.9, resamples=0, seed=2)
    biased = build_report([judge("full", 8)], settings, run=facts((_shown(40, True, 1),)))
    (bias,) = biased.position
    assert (bias.design, bias.n, bias.detected) == ("seeded orders", 40, True)
    assert bias.p_value == pytest.approx(1 / 2001)  # no re-drawn order is as extreme
    assert "(seed 2)" in bias.test
    (model,) = [f for f in biased.findings if f.text.startswith("full, models by harm")]
    assert "Warning: full's rankings lean by position (Friedman test" in model.text
    assert "seeded orders show each model in each position" in model.text
    assert "position.full" in model.evidence
    plain = build_report([judge("full", 8)], settings, run=facts((_shown(40, False, 1),)))
    assert not plain.position[0].detected
    assert not any("Warning" in f.text for f in plain.findings)


@pytest.fixture
def base(serve_app: Callable[[FastAPI], str]) -> str:
    return serve_app(create_app())


def _wire(presented: Presented) -> PresentedIn:
    return PresentedIn(
        annotator=presented.annotator,
        n_prompts=presented.n_prompts,
        ranks=presented.ranks.ravel().tolist(),
        positions=presented.positions.ravel().tolist(),
    )


def test_the_service_answers_what_the_library_computes(base: str) -> None:
    annotators = [judge("full", 8), judge("partial", 5)]
    settings = ReportSettings(p=0.9, resamples=0, seed=2)
    shown = _shown(40, True, 1)
    run = RunFactsIn(
        expected=dict(facts().expected),
        failures=[
            {"stage": f.stage, "name": f.name, "failed": f.failed, "first_error": f.first_error}
            for f in facts().failures
        ],
        presented=[_wire(shown)],
    )
    request = ReportRequest.of(annotators, settings, run=run)
    answered = httpx.post(base + "/v1/report", json=request.model_dump(mode="json"), timeout=60)
    assert answered.status_code == 200, answered.text
    wanted = build_report(annotators, settings, run=facts((shown,)))
    assert answered.json() == json.loads(json.dumps(to_jsonable(wanted)))
    # a stored report reads back with its coverage, failures and the seeded-orders test
    back = from_jsonable(type(wanted), answered.json())
    assert back.coverage == wanted.coverage
    assert back.position[0].n == 40


def test_positions_that_are_no_order_are_refused_with_where() -> None:
    ranks, positions = [1, 2, 3, 0, 1, 2, 1, 2, 3], [0, 1, 2, 0, 1, 2, 0, 0, 2]
    bad = PresentedIn(annotator="full", n_prompts=3, ranks=ranks, positions=positions)
    with pytest.raises(InvalidInput, match="judge 'full', ranking 2: positions \\[0, 0, 2\\]"):
        RunFactsIn(presented=[bad]).facts(list(MODELS))
    short = PresentedIn(annotator="full", n_prompts=3, ranks=ranks, positions=positions[:3])
    with pytest.raises(InvalidInput, match="3 rankings but 1 orders shown"):
        RunFactsIn(presented=[short]).facts(list(MODELS))
    tied = [1, 2, 3, 1, 1, 3, 1, 1, 3]
    wrong = PresentedIn(annotator="full", n_prompts=3, ranks=tied, positions=[0, 1, 2] * 3)
    with pytest.raises(InvalidInput, match=r"invalid ranking \[1, 1, 3\].*ranking 1"):
        RunFactsIn(presented=[wrong]).facts(list(MODELS))
    ragged = PresentedIn(annotator="full", n_prompts=3, ranks=ranks[:-1], positions=positions)
    with pytest.raises(InvalidInput, match="3 numbers a ranking"):
        RunFactsIn(presented=[ragged]).facts(list(MODELS))
