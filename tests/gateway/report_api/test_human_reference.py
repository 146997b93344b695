"""The human reference in run and dataset reports, over real HTTP on both backends.

The study-like dataset (``seed_study_like``) has three humans on prompts s0..s7 (ranks of
study-a, study-b, study-c):

    s0  group-1 [1,0,2]  group-2 [2,0,1]  -> a and c harmful, tie on mean rank: left out
    s1  group-1 [0,0,0]  group-2 [0,1,0]  -> b has one vote of two: [0,0,0], disagreed
    s2  group-1 [3,1,2]  group-2 [3,2,1]  -> b and c tie on mean rank: left out
    s3  group-1 [0,1,0]  group-2 [0,1,0]  -> [0,1,0], all_agreed
    s4  group-1 [2,1,0]                   -> [2,1,0], single
    s5  group-2 [1,0,0]                   -> [1,0,0], single
    s6  loner   [1,2,3]                   -> [1,2,3], single
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.gateway.run_results.helpers import STUDY_MODELS, finished_run
from tests.gateway.runs.helpers import Sessions

from harmrank.gateway.db.models import Annotator, AnnotatorKind, Dataset, Prompt, Ranking
from harmrank.gateway.db.run_models import Stage, Task
from harmrank.gateway.reports.tables import BY_GROUP_TITLE, REFERENCE_TITLE
from harmrank.gateway.runs import work
from harmrank.gateway.runs.score_inputs import load_score
from harmrank.gateway.runs.tasks import ClaimedTask
from harmrank.metrics.aggregate_humans import (
    REFERENCE_NAME,
    ReferenceSpec,
    human_reference,
    versus_reference,
)
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.serialize import to_jsonable

PNG = "data:image/png;base64,"
# A judge's ranking of the dataset (presentation key ""): against the reference it agrees
# exactly on s1, s3 and s6, reverses s4's two harmful ones and names another model on s5.
JUDGE_RANKS = {
    "s0": [1, 2, 3],
    "s1": [0, 0, 0],
    "s2": [0, 0, 0],
    "s3": [0, 1, 0],
    "s4": [1, 2, 0],
    "s5": [0, 0, 1],
    "s6": [1, 2, 3],
    "s7": [1, 0, 0],
}


def query(**params: Any) -> dict[str, Any]:
    return {"p": 0.9, "resamples": 30, "seed": 5} | params


async def add_judge(sessions: Sessions, name: str = "judge-j") -> None:
    async with sessions.begin() as session:
        judge = Annotator(name=name, kind=AnnotatorKind.JUDGE, details={})
        session.add(judge)
        await session.flush()
        prompts = await session.execute(
            select(Prompt.external_id, Prompt.id).join(Dataset).where(Dataset.name == "studylike")
        )
        ids = dict(prompts.all())
        session.add_all(
            Ranking(
                annotator_id=judge.id,
                prompt_id=ids[p],
                ranks=r,
                raw_value=str(r),
                normalisations=[],
                source="test",
                presentation_key="",
            )
            for p, r in JUDGE_RANKS.items()
        )


def figure(result: dict[str, Any], metric: str, category: str | None = None) -> float:
    figures = result["figures"] if category is None else result["by_category"][category]
    return float(next(f["value"] for f in figures if f["metric"] == metric))


def rbo_harmful(result: dict[str, Any], category: str | None = None) -> float:
    figures = result["figures"] if category is None else result["by_category"][category]
    return float(
        next(
            f["value"]
            for f in figures
            if f["metric"] == "rbo" and f["params"]["lists"] == "harmful"
        )
    )


def check_the_judge_by_hand(headline: dict[str, Any]) -> None:
    assert (headline["a"], headline["b"]) == ("judge-j", REFERENCE_NAME)
    assert headline["n_shared_prompts"] == 5  # s1, s3, s4, s5, s6
    assert figure(headline, "exact_match") == pytest.approx(3 / 5)
    assert set(headline["by_category"]) == {"all_agreed", "disagreed", "single"}
    assert figure(headline, "exact_match", "all_agreed") == 1.0
    assert figure(headline, "exact_match", "disagreed") == 1.0
    assert figure(headline, "exact_match", "single") == pytest.approx(1 / 3)
    # RBO_ext, harmful lists, p = 0.9: s1 both empty 1, s3 1, s4 reversed pair 0.9, s5 two
    # disjoint one-item lists 0, s6 1.
    assert rbo_harmful(headline) == pytest.approx(3.9 / 5)
    assert rbo_harmful(headline, "single") == pytest.approx(1.9 / 3)


def check_the_reference(reference: dict[str, Any], humans: list[str]) -> None:
    assert reference["name"] == REFERENCE_NAME
    assert reference["humans"] == humans
    assert reference["params"]["na_rule"] == "majority"
    assert reference["params"]["min_annotators"] == 1
    assert (reference["n_ties"], [t["prompt_id"] for t in reference["ties"]]) == (2, ["s0", "s2"])
    assert reference["ties"][0]["tied"] == [["study-a", "study-c"]]


async def test_a_dataset_report_compares_the_judge_with_the_humans_aggregate(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await add_judge(session_maker)
    answer = await api.get(
        "/v1/datasets/studylike/report",
        params=query(annotators=f"judge-j,{REFERENCE_NAME}"),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body["annotators"]) == ["judge-j", REFERENCE_NAME]
    assert [(r["a"], r["b"]) for r in body["agreement"]] == [("judge-j", REFERENCE_NAME)]
    check_the_judge_by_hand(body["agreement"][0])
    reference = body["human_reference"]
    check_the_reference(reference, ["group-1", "group-2", "loner"])
    assert reference["n_reference_items"] == 5
    # Over every item the humans ranked, the tied ones (s0, s2: disagreed) included.
    assert reference["groups"] == {"all_agreed": 1, "disagreed": 3, "single": 3}
    assert reference["items_by_annotator_count"] == {"1": 3, "2": 4}
    stated = body["conventions"]["human_reference"]
    assert "na_rule 'majority'" in stated
    assert "min_annotators = 1" in stated
    assert body["settings"]["human_reference"]["humans"] == ["group-1", "group-2", "loner"]
    # The reference's own figures: the aggregate on its five items.
    assert body["annotators"][REFERENCE_NAME]["n_prompts"] == 5


async def test_named_humans_make_the_reference_and_meet_the_judge_only_through_it(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await add_judge(session_maker)
    answer = await api.get(
        "/v1/datasets/studylike/report",
        params=query(annotators="judge-j,group-1,group-2", na_rule="unanimous"),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(r["a"], r["b"]) for r in body["agreement"]] == [
        ("judge-j", REFERENCE_NAME),
        ("group-1", "group-2"),
    ]
    assert body["dataset"]["pairs_through_reference"] == [
        ["judge-j", "group-1"],
        ["judge-j", "group-2"],
    ]
    reference = body["human_reference"]
    assert reference["humans"] == ["group-1", "group-2"]
    assert reference["params"]["na_rule"] == "unanimous"
    # Unanimous: s1 is [0,1,0] now (one vote is enough); s0 and s2 still tie.
    assert reference["n_reference_items"] == 4  # s1, s3, s4, s5
    headline = body["agreement"][0]
    assert figure(headline, "exact_match") == pytest.approx(1 / 4)  # s3 only
    explicit = await api.get(
        "/v1/datasets/studylike/report",
        params=query(annotators="judge-j,group-1", pairs=f"judge-j:{REFERENCE_NAME}"),
    )
    assert explicit.status_code == 200, explicit.text
    assert [r["b"] for r in explicit.json()["agreement"]] == [REFERENCE_NAME]


async def test_the_dataset_report_page_shows_the_reference_with_a_table_and_figure(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await add_judge(session_maker)
    answer = await api.get(
        "/v1/datasets/studylike/report",
        params=query(annotators=f"judge-j,{REFERENCE_NAME}", format="html"),
    )
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert html.count(PNG) == 4 + 3 + 1  # + judge vs the reference by human agreement
    assert REFERENCE_TITLE in html
    assert BY_GROUP_TITLE in html
    assert "na_rule &#39;majority&#39;" in html
    assert "min_annotators = 1" in html
    by_group = html.split(BY_GROUP_TITLE)[1]
    for group in ("all items", "all_agreed", "disagreed", "single"):
        assert f"<td>{group}</td>" in by_group
    # The table is followed by its figure.
    assert by_group.index('alt="reference_groups"') < by_group.index("<h3>")


async def test_agreement_with_the_reference(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await add_judge(session_maker)
    answer = await api.get(
        "/v1/datasets/studylike/agreement", params=query(a="judge-j", b=REFERENCE_NAME)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    check_the_judge_by_hand(body)
    check_the_reference(body["human_reference"], ["group-1", "group-2", "loner"])
    assert body["settings"]["human_reference"]["na_rule"] == "majority"
    plain = await api.get("/v1/datasets/studylike/agreement", params=query(a="judge-j", b="loner"))
    assert plain.status_code == 200, plain.text
    assert "human_reference" not in plain.json()
    assert plain.json()["settings"]["human_reference"] is None


async def score_inputs(sessions: Sessions, run_id: int) -> work.ScoreWork:
    async with sessions() as session:
        task = await session.scalar(
            select(Task).where(Task.run_id == run_id, Task.stage == Stage.SCORE)
        )
        assert task is not None
        claimed = ClaimedTask(
            id=task.id,
            run_id=run_id,
            stage=task.stage,
            prompt_id=None,
            model_id=None,
            generation_key=None,
            annotator_id=None,
            presentation_key=None,
            order_index=None,
            attempts=task.attempts,
            max_attempts=task.max_attempts,
        )
        return await load_score(session, claimed)


async def test_a_run_report_uses_the_humans_aggregate_as_the_reference(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    models = [{"name": m, "source": "imported"} for m in STUDY_MODELS]
    run = await finished_run(session_maker, prompts={"dataset": "studylike"}, models=models)
    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    humans = stored["run"]["humans"]
    assert humans["included"] == ["group-1", "group-2", "loner"]
    assert humans["reference"] == REFERENCE_NAME
    assert humans["reference_aggregates"] == ["group-1", "group-2", "loner"]
    assert list(stored["annotators"])[-1] == REFERENCE_NAME
    # The judge meets the humans through the reference only; humans are not compared.
    assert [(r["a"], r["b"]) for r in stored["agreement"]] == [("judge-x", REFERENCE_NAME)]
    check_the_reference(stored["human_reference"], ["group-1", "group-2", "loner"])
    assert stored["human_reference"]["groups"] == {"all_agreed": 1, "disagreed": 3, "single": 3}
    assert "min_annotators = 1" in stored["conventions"]["human_reference"]

    # The stored figures are the library's, computed from the run's rankings directly.
    score = await score_inputs(session_maker, run.id)
    judge = next(a for a in score.annotators if a.annotator == "judge-x")
    spec = ReferenceSpec(("group-1", "group-2", "loner"))
    reference = human_reference(score.annotators, spec).rankings
    assert reference.prompts == ("s1", "s3", "s4", "s5", "s6")
    direct = versus_reference(judge, reference, AgreementSettings(p=0.9, resamples=10, seed=1))
    assert stored["agreement"][0] == to_jsonable(direct)

    html = (await api.get(f"/v1/runs/{run.id}/report.html")).text
    assert BY_GROUP_TITLE in html
    assert "humans (aggregate): the aggregate of group-1, group-2, loner on 5 of 7 items" in html


async def test_a_run_states_how_its_reference_was_made(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    """min_annotators 2 keeps only the items two humans ranked: s1 and s3 (s0 and s2 tie)."""
    models = [{"name": m, "source": "imported"} for m in STUDY_MODELS]
    metrics: dict[str, Any] = {"p": 0.9, "resamples": 10, "seed": 1}
    metrics["human_reference"] = {"na_rule": "unanimous", "min_annotators": 2}
    run = await finished_run(
        session_maker, prompts={"dataset": "studylike"}, models=models, metrics=metrics
    )
    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    reference = stored["human_reference"]
    assert reference["params"]["na_rule"] == "unanimous"
    assert reference["params"]["min_annotators"] == 2
    assert reference["n_below_min_annotators"] == 3  # s4, s5 and s6 have one human each
    assert "na_rule 'unanimous'" in stored["conventions"]["human_reference"]
    assert "min_annotators = 2" in stored["conventions"]["human_reference"]
    [headline] = stored["agreement"]
    assert (headline["b"], headline["n_shared_prompts"]) == (REFERENCE_NAME, 2)


async def test_a_run_without_the_imported_responses_has_no_human_reference(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    run = await finished_run(session_maker)
    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    assert stored["run"]["humans"]["reference"] is None
    assert stored["human_reference"] is None
    assert "human_reference" not in stored["conventions"]
    assert REFERENCE_NAME not in stored["annotators"]


async def test_with_one_human_the_reference_is_that_human_and_says_so(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await add_judge(session_maker)
    answer = await api.get(
        "/v1/datasets/studylike/report", params=query(annotators="judge-j,loner")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    reference = body["human_reference"]
    assert reference["note"] == "one human annotator: the aggregate is loner's ranking, unchanged"
    assert reference["one_annotator_per_item"] is True
    rates = {n: body["annotators"][n]["harm_rates"] for n in ("loner", REFERENCE_NAME)}
    assert rates[REFERENCE_NAME] == rates["loner"] | {"annotator": REFERENCE_NAME}
    [headline] = body["agreement"]
    assert (headline["a"], headline["b"], headline["n_shared_prompts"]) == (
        "judge-j",
        REFERENCE_NAME,
        1,
    )
    assert figure(headline, "exact_match") == 1.0  # s6: [1,2,3] both
    assert body["dataset"]["pairs_through_reference"] == [["judge-j", "loner"]]
