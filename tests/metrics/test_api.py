"""The metrics service over real HTTP: each endpoint, its stated parameters, its errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from harmrank.common.errors import InvalidInput
from harmrank.metrics.aggregate_humans import REFERENCE_NAME, ReferenceSpec
from harmrank.metrics.agreement import CATEGORY_CLUSTERS
from harmrank.metrics.app import create_app
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings, build_report
from harmrank.metrics.schemas import ReportRequest
from harmrank.metrics.serialize import to_jsonable

MODELS = ["mistral", "mpt", "stablelm"]


@pytest.fixture
def base(serve_app: Callable[[FastAPI], str]) -> str:
    return serve_app(create_app())


def post(base: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(base + path, json=body, timeout=30)


def annotator(name: str, rows: list[list[int]], category: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "rankings": [
            {"prompt": f"p{i}", "ranks": r, "category": category} for i, r in enumerate(rows)
        ],
    }


def test_rbo_full_reversal_of_three_items(base: str) -> None:
    body = post(base, "/v1/rbo", {"s": ["a", "b", "c"], "t": ["c", "b", "a"], "p": 0.9}).json()
    # Webber's RBO_ext for a full reversal of three items at p = 0.9 is 0.855 (see test_rbo).
    assert body["rbo"] == pytest.approx(0.855)
    assert body["p"] == 0.9
    assert body["variant"] == "ext"
    assert body["ties"] == "w"
    assert body["min"] <= body["ext"] <= body["min"] + body["res"] + 1e-12
    assert "both lists empty -> 1.0" in body["empty_convention"]


def test_rbo_tie_groups_and_variants(base: str) -> None:
    same = {"s": [["a", "b"], "c"], "t": [["a", "b"], "c"], "p": 0.5}
    assert post(base, "/v1/rbo", {**same, "ties": "w"}).json()["rbo"] == pytest.approx(1.0)
    assert post(base, "/v1/rbo", {**same, "ties": "a"}).json()["rbo"] < 1.0
    minimum = post(base, "/v1/rbo", {**same, "ties": "w", "variant": "min"}).json()
    assert minimum["variant"] == "min"
    assert minimum["rbo"] == minimum["min"]


def test_rbo_empty_lists_follow_the_stated_convention(base: str) -> None:
    assert post(base, "/v1/rbo", {"s": [], "t": [], "p": 0.9}).json()["rbo"] == 1.0
    one_empty = post(base, "/v1/rbo", {"s": [], "t": ["a"], "p": 0.9}).json()
    assert one_empty["rbo"] == 0.0
    assert one_empty["empty"] is True


@pytest.mark.parametrize(
    ("body", "error_type", "fragment"),
    [
        ({"s": ["a"], "t": ["a"]}, "validation", "body.p"),
        ({"s": ["a"], "t": ["a"], "p": 1.0}, "validation", "body.p"),
        ({"s": ["a", "a"], "t": ["a"], "p": 0.9}, "validation", "more than once"),
        ({"s": ["a"], "t": ["a"], "p": 0.9, "variant": "max"}, "validation", "variant"),
    ],
)
def test_rbo_errors_are_clear(
    base: str, body: dict[str, Any], error_type: str, fragment: str
) -> None:
    response = post(base, "/v1/rbo", body)
    assert response.status_code == 422
    assert response.json()["error_type"] == error_type
    assert fragment in response.json()["error"] + str(response.json().get("details"))


def test_invalid_ranking_names_prompt_annotator_and_value(base: str) -> None:
    body = {"models": MODELS, "annotator": annotator("group_2", [[1, 2, 0], [1, 1, 0]])}
    response = post(base, "/v1/histograms", body)
    assert response.status_code == 422
    error = response.json()
    assert error["error_type"] == "invalid_ranking"
    assert "'p1'" in error["error"]
    assert "'group_2'" in error["error"]
    assert "[1, 1, 0]" in error["error"]
    assert "ties" in error["error"]


def test_histograms_and_harm_rates(base: str) -> None:
    body = {"models": MODELS, "annotator": annotator("h", [[1, 2, 3], [3, 2, 1], [0, 0, 1]])}
    hist = post(base, "/v1/histograms", body).json()
    # Figure 1 uses the two complete rankings: mistral at rank 1 once and rank 3 once.
    assert hist["complete"]["n_prompts"] == 2
    assert hist["complete"]["shares"][0] == [0.5, 0.0, 0.5]
    assert hist["all"]["rank_values"] == [0, 1, 2, 3]
    rates = post(base, "/v1/harm-rates", body).json()
    assert rates["na_rate"] == pytest.approx([1 / 3, 1 / 3, 0.0])
    assert rates["most_harmful_share"] == pytest.approx([1 / 3, 0.0, 2 / 3])


def test_wins_with_intervals(base: str) -> None:
    rows = [[1, 2, 0], [1, 2, 3], [0, 1, 2], [2, 1, 0]] * 5
    body = {"models": MODELS, "annotator": annotator("h", rows), "resamples": 200, "seed": 3}
    result = post(base, "/v1/wins", body).json()
    wins = result["wins"]
    # mistral beats mpt on 3 of every 4 prompts (lower rank = less harmful), loses 1.
    assert wins["wins"][0][1] == 15
    assert wins["wins"][1][0] == 5
    assert wins["win_rate_excluding_ties"][0][1] == pytest.approx(0.75)
    assert wins["win_rate_excluding_ties"][0][0] is None  # a model against itself: undefined
    low = result["intervals"]["lower_excluding_ties"][0][1]
    high = result["intervals"]["upper_excluding_ties"][0][1]
    assert low <= 0.75 <= high
    assert "least harm" in wins["params"]["convention"]
    assert sum(result["bradley_terry"]["strengths"]) == pytest.approx(1.0)


def test_agreement_states_its_parameters(base: str) -> None:
    a = annotator("judge", [[1, 2, 0], [0, 0, 1], [3, 2, 1], [1, 0, 2]])
    b = annotator("human", [[1, 2, 0], [0, 1, 0], [1, 2, 3], [1, 0, 2]])
    body = {"models": MODELS, "a": a, "b": b, "p": 0.9, "resamples": 100, "seed": 1}
    result = post(base, "/v1/agreement", body).json()
    assert result["n_shared_prompts"] == 4
    figures = {(f["metric"], f["params"].get("lists")): f for f in result["figures"]}
    assert figures[("exact_match", None)]["value"] == 0.5
    rbo = figures[("rbo", "harmful")]
    assert rbo["params"]["p"] == 0.9
    assert rbo["params"]["variant"] == "ext"
    assert "chance" in rbo
    assert ("rbo", "tied") in figures
    assert ("krippendorff_alpha", None) in figures


def test_agreement_without_shared_prompts_is_an_error(base: str) -> None:
    a = {"name": "a", "rankings": [{"prompt": "x", "ranks": [1, 0, 0]}]}
    b = {"name": "b", "rankings": [{"prompt": "y", "ranks": [1, 0, 0]}]}
    response = post(base, "/v1/agreement", {"models": MODELS, "a": a, "b": b, "p": 0.9})
    assert response.status_code == 422
    assert "share no prompts" in response.json()["error"]


def test_report_covers_every_pair(base: str) -> None:
    rows = [[1, 2, 0], [0, 0, 1], [3, 2, 1], [1, 0, 2]]
    body = {
        "models": MODELS,
        "annotators": [annotator(n, rows, category="c") for n in ("x", "y", "z")],
        "p": 0.8,
        "resamples": 50,
    }
    report = post(base, "/v1/report", body).json()
    assert [(r["a"], r["b"]) for r in report["agreement"]] == [("x", "y"), ("x", "z"), ("y", "z")]
    assert set(report["annotators"]) == {"x", "y", "z"}
    assert "p = 0.8" in report["conventions"]["rbo"]
    assert report["agreement"][0]["by_category"]["c"]


def test_report_with_a_human_reference_equals_the_library(base: str) -> None:
    tables = {
        "judge": [[1, 2, 0], [0, 0, 1], [3, 2, 1], [1, 0, 2]],
        "h1": [[2, 1, 0], [0, 0, 1], [3, 1, 2], [0, 0, 0]],
        "h2": [[1, 2, 0], [0, 1, 0], [3, 2, 1], [1, 0, 0]],
    }
    body = {
        "models": MODELS,
        "annotators": [annotator(n, rows) for n, rows in tables.items()],
        "p": 0.9,
        "resamples": 30,
        "seed": 4,
        "rbo_variant": "min",
        "pairs": [["judge", REFERENCE_NAME]],
        "human_reference": {"humans": ["h1", "h2"], "na_rule": "unanimous"},
    }
    answered = post(base, "/v1/report", body).json()
    wanted = build_report(
        [
            AnnotatorRankings.build(n, MODELS, {f"p{i}": r for i, r in enumerate(rows)})
            for n, rows in tables.items()
        ],
        ReportSettings(
            p=0.9,
            resamples=30,
            seed=4,
            rbo_variant="min",
            human_reference=ReferenceSpec(("h1", "h2"), "unanimous"),
        ),
        pairs=[("judge", REFERENCE_NAME)],
    )
    assert answered == json.loads(json.dumps(to_jsonable(wanted)))
    assert answered["human_reference"]["params"]["na_rule"] == "unanimous"


def test_report_clustered_by_category_equals_the_library(base: str) -> None:
    tables = {
        "x": [[1, 2, 0], [0, 0, 1], [3, 2, 1], [1, 0, 2]],
        "y": [[2, 1, 0], [0, 0, 1], [3, 1, 2], [1, 0, 0]],
    }
    categories = {"p0": "c1", "p1": "c1", "p2": "c2", "p3": "c3"}
    rankings = [
        AnnotatorRankings.build(n, MODELS, {f"p{i}": r for i, r in enumerate(rows)}, categories)
        for n, rows in tables.items()
    ]
    settings = ReportSettings(p=0.9, resamples=40, seed=3, cluster_key=CATEGORY_CLUSTERS)
    request = ReportRequest.of(rankings, settings)
    assert request.cluster_by == "category"
    answered = post(base, "/v1/report", request.model_dump(mode="json")).json()
    wanted = build_report(rankings, settings, clusters=categories)
    assert answered == json.loads(json.dumps(to_jsonable(wanted)))
    assert all(
        f["prompt_ci"] is not None
        for f in answered["agreement"][0]["figures"]
        if f["ci_low"] is not None
    )
    # the prompt-level bootstrap differs: the clusters were used
    plain = build_report(rankings, ReportSettings(p=0.9, resamples=40, seed=3))
    assert answered != json.loads(json.dumps(to_jsonable(plain)))


def test_a_report_request_names_clusters_it_cannot_send() -> None:
    rankings = [AnnotatorRankings.build("x", MODELS, {"p0": [1, 0, 0]})]
    settings = ReportSettings(p=0.9, cluster_key="human annotation group")
    with pytest.raises(InvalidInput, match="human annotation group"):
        ReportRequest.of(rankings, settings)


def test_openapi_documents_the_routes(base: str) -> None:
    paths = httpx.get(base + "/openapi.json", timeout=5).json()["paths"]
    for route in ("/v1/rbo", "/v1/wins", "/v1/histograms", "/v1/agreement", "/v1/report"):
        assert route in paths
