"""POST /v1/ppi over real HTTP: the three methods per estimand, the jury, weights, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from harmrank.metrics.app import create_app
from harmrank.metrics.ppi import ppi_mean

MODELS = ["mistral", "mpt", "stablelm"]
RANKINGS = [[0, 1, 2], [1, 0, 0], [0, 0, 0], [2, 1, 3], [0, 2, 1], [1, 2, 0]]


@pytest.fixture
def base(serve_app: Callable[[FastAPI], str]) -> str:
    return serve_app(create_app())


def annotator(name: str, rows: dict[int, list[int]]) -> dict[str, Any]:
    return {"name": name, "rankings": [{"prompt": f"p{i}", "ranks": r} for i, r in rows.items()]}


def judges_and_human() -> dict[str, Any]:
    every = {i: RANKINGS[i % 6] for i in range(30)}
    other = {i: RANKINGS[(i + 1) % 6] if i % 5 == 0 else RANKINGS[i % 6] for i in range(30)}
    human = {i: RANKINGS[(i + 2) % 6] if i % 4 == 0 else RANKINGS[i % 6] for i in range(0, 30, 3)}
    return {
        "models": MODELS,
        "human": annotator("human", human),
        "judges": [annotator("gpt4o", every), annotator("claude", other)],
    }


def test_ppi_answers_every_estimand_and_method(base: str) -> None:
    body = {**judges_and_human(), "jury": True, "confidence": 0.9}
    answer = httpx.post(base + "/v1/ppi", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [r["judge"] for r in data["results"]] == ["gpt4o", "claude", "jury"]
    assert data["jury"]["jurors"] == ["gpt4o", "claude"]
    first = data["results"][0]
    assert (first["n_human"], first["n_judge"], first["policy"]) == (10, 30, "uniform")
    assert first["params"]["confidence"] == 0.9
    methods = {(e["estimand"], e["subject"], e["method"]) for e in first["estimates"]}
    assert ("win_rate", "mistral vs mpt", "ppi") in methods
    assert len(methods) == 27
    row = next(
        e
        for e in first["estimates"]
        if (e["estimand"], e["subject"], e["method"]) == ("harm_rate", "mpt", "ppi")
    )
    labelled = list(range(0, 30, 3))
    y = np.array(
        [
            RANKINGS[(i + 2) % 6][1] != 0 if i % 4 == 0 else RANKINGS[i % 6][1] != 0
            for i in labelled
        ],
        dtype=float,
    )
    yhat_all = np.array([RANKINGS[i % 6][1] != 0 for i in range(30)], dtype=float)
    rest = [i for i in range(30) if i not in labelled]
    direct = ppi_mean(y, yhat_all[labelled], yhat_all[rest])
    low, high = direct.interval(0.9)
    assert (row["estimate"], row["ci_low"], row["ci_high"]) == pytest.approx(
        (float(direct.estimate), float(low), float(high))
    )
    judge_only = [e for e in first["estimates"] if e["method"] == "judge_only"]
    assert all(e["biased"] for e in judge_only)


def test_ppi_takes_inclusion_probabilities(base: str) -> None:
    body = judges_and_human()
    body["inclusion"] = {f"p{i}": 0.25 if i % 2 else 0.4 for i in range(30)}
    data = httpx.post(base + "/v1/ppi", json=body, timeout=30).json()
    assert "inverse-probability" in data["results"][0]["policy"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"inclusion": {"p0": 0.5}}, "no probability for prompt"),
        ({"jury": True, "judges": None}, "at least two judges"),
        ({"inclusion": {"p0": 1.5}}, "less than or equal to 1"),
    ],
)
def test_ppi_bad_input_is_a_clear_4xx(base: str, change: dict[str, Any], message: str) -> None:
    body = judges_and_human()
    if change.get("judges", 1) is None:
        body["judges"] = body["judges"][:1]
        change = {k: v for k, v in change.items() if k != "judges"}
    answer = httpx.post(base + "/v1/ppi", json={**body, **change}, timeout=30)
    assert 400 <= answer.status_code < 500
    assert message in answer.json()["error"]
    assert {"error", "error_type"} <= set(answer.json())


def test_the_report_takes_a_ppi_spec(base: str) -> None:
    parts = judges_and_human()
    body = {
        "models": MODELS,
        "annotators": [parts["human"], *parts["judges"]],
        "p": 0.9,
        "resamples": 10,
        "ppi": {"truth": "human", "judges": ["gpt4o", "claude"], "policy": "by hand"},
    }
    answer = httpx.post(base + "/v1/report", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert "jury" in data["annotators"]
    assert data["ppi"]["policy"] == "by hand"
    assert [r["judge"] for r in data["ppi"]["estimates"]] == ["gpt4o", "claude", "jury"]
    assert "by hand" in data["conventions"]["ppi"]
    assert data["conventions"]["jury"].startswith("the judges gpt4o, claude combined")


def test_the_report_takes_a_sampling_design(base: str) -> None:
    parts = judges_and_human()
    inclusion = {f"p{i}": 0.5 if i % 3 == 0 else 0.25 for i in range(30)}
    sample = [f"p{i}" for i in range(0, 30, 3) if i != 27]  # p27 drawn, human ranked it: unused
    body: dict[str, Any] = {
        "models": MODELS,
        "annotators": [parts["human"], *parts["judges"]],
        "p": 0.9,
        "resamples": 0,
        "ppi": {
            "truth": "human",
            "judges": ["gpt4o"],
            "policy": "active (stored)",
            "inclusion": inclusion,
            "sample": sample,
        },
    }
    answer = httpx.post(base + "/v1/report", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    section = answer.json()["ppi"]
    (result,) = section["estimates"]
    assert (result["n_human"], result["n_judge"]) == (9, 30)
    assert any("not drawn by the policy" in n for n in section["notes"])
    no_inclusion = {**body, "ppi": {**body["ppi"], "inclusion": None}}
    refused = httpx.post(base + "/v1/report", json=no_inclusion, timeout=60)
    assert refused.status_code == 422
    assert "`sample` needs `inclusion`" in refused.text
