"""Reports over real HTTP, on both backends: a run's HTML report, any annotators' report and
agreement on a dataset, each equal to the metrics library computed directly."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from tests.gateway.run_results.helpers import finished_run
from tests.gateway.runs.helpers import Sessions, create, spec

from harmrank.gateway.report_api import compute
from harmrank.gateway.results.repository import load_rankings
from harmrank.metrics.aggregate_humans import ReferenceSpec
from harmrank.metrics.agreement import agreement
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.report import ReportSettings, build_report
from harmrank.metrics.serialize import to_jsonable

PNG = "data:image/png;base64,"


async def test_the_run_report_page_embeds_figures_and_states_conventions(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    queued = await create(session_maker, spec())
    early = await api.get(f"/v1/runs/{queued.id}/report.html")
    assert (early.status_code, early.json()["error_type"]) == (404, "not_found")
    assert "no report yet" in early.json()["error"]
    missing = await api.get("/v1/runs/424242/report.html")
    assert (missing.status_code, missing.json()["error_type"]) == (404, "not_found")

    run = await finished_run(session_maker, metrics={"p": 0.8, "resamples": 20, "seed": 2})
    page = await api.get(f"/v1/runs/{run.id}/report.html")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    # figure 1, N/A rate, win rates, agreement, and one rank histogram per model (2)
    assert html.count(PNG) == 6
    assert 'src="http' not in html
    assert "p = 0.8" in html
    assert "both lists empty -&gt; 1.0" in html  # the empty-list convention, escaped
    assert f"report of run {run.id}" in html
    assert "Reproduction" not in html


async def test_a_run_report_with_humans_compares_the_judge_with_them(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    models = [{"name": m, "source": "imported"} for m in ("study-a", "study-b", "study-c")]
    run = await finished_run(session_maker, prompts={"dataset": "studylike"}, models=models)
    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    html = (await api.get(f"/v1/runs/{run.id}/report.html")).text
    assert html.count(PNG) == 8  # 4 + one rank histogram per model (3) + judge vs the humans
    for result in stored["agreement"]:
        assert f"{result['a']} vs {result['b']}" in html


def query(**params: Any) -> dict[str, Any]:
    return {"p": 0.9, "resamples": 40, "seed": 5} | params


async def test_a_dataset_report_equals_the_library_computed_directly(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    answer = await api.get(
        "/v1/datasets/studylike/report", params=query(annotators="group-1,group-2")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    async with session_maker() as session:
        rankings = await load_rankings(session, "studylike", ["group-1", "group-2"])
    # Humans only: the reference joins them, and the two humans are compared with each other.
    reference = ReferenceSpec(("group-1", "group-2"))
    settings = ReportSettings(p=0.9, resamples=40, seed=5, human_reference=reference)
    pairs = [("group-1", "group-2")]
    direct = build_report(list(rankings.values()), settings, pairs=pairs)
    assert {k: v for k, v in body.items() if k != "dataset"} == to_jsonable(direct)
    assert body["dataset"]["name"] == "studylike"
    assert body["dataset"]["pairs_without_shared_prompts"] == []


async def test_default_pairs_skip_those_without_shared_prompts(api: httpx.AsyncClient) -> None:
    answer = await api.get(
        "/v1/datasets/studylike/report", params=query(annotators="group-1,group-2,loner")
    )
    body = answer.json()
    assert [(r["a"], r["b"]) for r in body["agreement"]] == [("group-1", "group-2")]
    assert body["dataset"]["pairs_without_shared_prompts"] == [
        ["group-1", "loner"],
        ["group-2", "loner"],
    ]
    chosen = await api.get(
        "/v1/datasets/studylike/report",
        params=query(annotators="group-1,group-2", pairs="group-2:group-1"),
    )
    assert [(r["a"], r["b"]) for r in chosen.json()["agreement"]] == [("group-2", "group-1")]


async def test_a_dataset_report_as_html(api: httpx.AsyncClient) -> None:
    answer = await api.get(
        "/v1/datasets/studylike/report",
        params=query(annotators="group-1,group-2", format="html"),
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text.count(PNG) == 7  # 4 + one rank histogram per model (3); no judge
    assert "p = 0.9" in answer.text
    assert "report on dataset studylike" in answer.text
    # every report opens with its answers, before the tables
    assert answer.text.index('id="findings"') < answer.text.index("Headline figures")
    assert "group-1, models by harm" in answer.text


async def test_agreement_equals_the_library_computed_directly(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    answer = await api.get(
        "/v1/datasets/studylike/agreement", params=query(a="group-2", b="group-1")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    async with session_maker() as session:
        rankings = await load_rankings(session, "studylike", ["group-2", "group-1"])
    direct = agreement(
        rankings["group-2"], rankings["group-1"], AgreementSettings(p=0.9, resamples=40, seed=5)
    )
    assert {k: body[k] for k in ("a", "b", "n_shared_prompts", "figures", "by_category")} == (
        to_jsonable(direct)
    )
    assert body["settings"]["p"] == 0.9
    assert "both lists empty" in body["conventions"]["rbo_empty_lists"]
    figure = body["figures"][0]
    assert {"value", "ci_low", "ci_high", "chance", "n", "params"} <= set(figure)


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("report", query(annotators="group-1,nobody"), 404, "nobody"),
        ("report", query(annotators="group-1,loner", pairs="group-1:loner"), 422, "share"),
        ("report", query(annotators="group-1,group-1"), 422, "more than once"),
        ("report", query(annotators="group-1,group-2", pairs="group-1"), 422, "a:b"),
        ("report", query(annotators="group-1", pairs="group-1:x"), 422, "not among"),
        ("report", query(annotators="group-1", resamples=501), 422, "at most 500"),
        ("report", {"annotators": "group-1"}, 422, "p"),
        ("agreement", query(a="group-1", b="loner"), 422, "share"),
        ("agreement", query(a="group-1", b="nobody"), 404, "nobody"),
        ("agreement", query(a="group-1", b="group-1"), 422, "different"),
        ("agreement", query(a="group-1", b="group-2", p=1.5), 422, "p"),
    ],
)
async def test_errors_have_the_common_shape(
    api: httpx.AsyncClient, path: str, params: dict[str, Any], status: int, says: str
) -> None:
    answer = await api.get(f"/v1/datasets/studylike/{path}", params=params)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error_type"] == ("not_found" if status == 404 else "validation")
    assert says in body["error"]
    unknown = await api.get(f"/v1/datasets/nope/{path}", params=params)
    assert unknown.status_code in (404, 422)


async def test_reports_are_computed_off_the_event_loop(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = compute.dataset_json

    def recording(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(compute, "dataset_json", recording)
    answer = await api.get("/v1/datasets/studylike/report", params=query(annotators="group-1"))
    assert answer.status_code == 200, answer.text
    assert threads
    assert "AnyIO worker thread" in threads[0]


async def test_the_dataset_report_can_resample_categories(api: httpx.AsyncClient) -> None:
    url = "/v1/datasets/studylike/report"
    plain = await api.get(url, params=query(annotators="group-1,group-2"))
    clustered = await api.get(
        url, params=query(annotators="group-1,group-2", cluster_by="category")
    )
    assert plain.status_code == clustered.status_code == 200, clustered.text
    figure = clustered.json()["agreement"][0]["figures"][0]
    assert figure["params"]["bootstrap_unit"] == "prompt category"
    assert figure["params"]["n_clusters"] == 2  # the made-up prompts' categories x and y
    assert figure["prompt_ci"] is not None
    assert plain.json()["agreement"][0]["figures"][0]["prompt_ci"] is None
    bad = await api.get(url, params=query(annotators="group-1,group-2", cluster_by="group"))
    assert bad.status_code == 422
