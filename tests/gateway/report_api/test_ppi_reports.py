"""PPI estimates and the judges' jury in dataset and run reports, over real HTTP on both backends.

The study-like dataset's human reference covers s1, s3, s4, s5 and s6 (see
``test_human_reference``); the judges rank s0..s7, so five prompts are labelled by humans and
three are not.
"""

from __future__ import annotations

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import select
from tests.gateway.report_api.test_human_reference import JUDGE_RANKS, add_judge, query
from tests.gateway.run_results.helpers import STUDY_MODELS, finished_run
from tests.gateway.runs.helpers import Sessions

from harmrank.gateway.db import Dataset, Prompt
from harmrank.gateway.db.annotation_models import AnnotationConfig, AnnotationDraw, SamplingPolicy
from harmrank.gateway.reports.tables_ppi import PPI_TITLE
from harmrank.metrics.aggregate_humans import REFERENCE_NAME
from harmrank.metrics.ppi import MeanEstimate, ppi_mean
from harmrank.metrics.report_ppi import UNRECORDED_POLICY

LABELLED = ("s1", "s3", "s4", "s5", "s6")
# The reference's rankings of the labelled prompts (see test_human_reference's table).
REFERENCE = {"s1": [0, 0, 0], "s3": [0, 1, 0], "s4": [2, 1, 0], "s5": [1, 0, 0], "s6": [1, 2, 3]}


def harm(rows: list[list[int]], model: int) -> npt.NDArray[np.float64]:
    return np.array([float(r[model] != 0) for r in rows])


def direct_ppi(model: int, pi: dict[str, float] | None = None) -> MeanEstimate:
    """PPI++ of a model's harm rate, the reference on LABELLED and judge-j everywhere, computed
    here from the table (weighted by 1/pi and 1/(1 - pi) when pi is given)."""
    unlabelled = [p for p in JUDGE_RANKS if p not in LABELLED]
    return ppi_mean(
        harm([REFERENCE[p] for p in LABELLED], model),
        harm([JUDGE_RANKS[p] for p in LABELLED], model),
        harm([JUDGE_RANKS[p] for p in unlabelled], model),
        w=np.array([1 / pi[p] for p in LABELLED]) if pi else None,
        w_u=np.array([1 / (1 - pi[p]) for p in unlabelled]) if pi else None,
    )


async def test_a_dataset_report_has_ppi_estimates_against_the_reference(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await add_judge(session_maker)
    answer = await api.get(
        "/v1/datasets/studylike/report", params=query(annotators=f"judge-j,{REFERENCE_NAME}")
    )
    assert answer.status_code == 200, answer.text
    section = answer.json()["ppi"]
    assert section["truth"] == REFERENCE_NAME
    assert section["policy"] == UNRECORDED_POLICY
    assert section["jury"] is None  # one judge makes no jury
    (result,) = section["estimates"]
    assert (result["judge"], result["n_human"], result["n_judge"]) == ("judge-j", 5, 8)
    rows = {(e["estimand"], e["subject"], e["method"]): e for e in result["estimates"]}
    for j, model in enumerate(STUDY_MODELS):
        direct = direct_ppi(j)
        ppi = rows[("harm_rate", model, "ppi")]
        assert ppi["estimate"] == pytest.approx(float(direct.estimate))
        assert ppi["lam"] == pytest.approx(float(direct.lam))
        judge_only = rows[("harm_rate", model, "judge_only")]
        assert judge_only["biased"] is True
        assert judge_only["estimate"] == pytest.approx(sum(harm(list(JUDGE_RANKS.values()), j)) / 8)
    assert "ppi" in answer.json()["conventions"]


async def test_two_judges_make_a_jury_compared_with_the_reference(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await add_judge(session_maker, "judge-j")
    await add_judge(session_maker, "judge-k")
    params = query(annotators=f"judge-j,judge-k,{REFERENCE_NAME}")
    body = (await api.get("/v1/datasets/studylike/report", params=params)).json()
    assert "jury" in body["annotators"]
    assert ("jury", REFERENCE_NAME) in {(r["a"], r["b"]) for r in body["agreement"]}
    assert body["ppi"]["jury"]["jurors"] == ["judge-j", "judge-k"]
    assert [r["judge"] for r in body["ppi"]["estimates"]] == ["judge-j", "judge-k", "jury"]
    assert "jury" in body["conventions"]
    html = await api.get("/v1/datasets/studylike/report", params={**params, "format": "html"})
    assert PPI_TITLE in html.text
    assert "not recorded" in html.text


async def test_a_run_report_has_ppi_estimates(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    models = [{"name": m, "source": "imported"} for m in STUDY_MODELS]
    run = await finished_run(session_maker, prompts={"dataset": "studylike"}, models=models)
    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    section = stored["ppi"]
    assert section["truth"] == REFERENCE_NAME
    assert [r["judge"] for r in section["estimates"]] == ["judge-x"]
    result = section["estimates"][0]
    assert result["n_human"] == 5
    methods = {e["method"] for e in result["estimates"]}
    assert methods == {"human_only", "judge_only", "ppi"}
    html = (await api.get(f"/v1/runs/{run.id}/report.html")).text
    assert PPI_TITLE in html


async def test_a_run_without_humans_has_no_ppi(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    run = await finished_run(session_maker)
    stored = (await api.get(f"/v1/runs/{run.id}/report")).json()
    assert stored["ppi"] is None


DESIGN = {"s0": 0.3, "s1": 0.9, "s2": 0.6, "s3": 0.9, "s4": 0.4, "s5": 0.4, "s6": 0.4, "s7": 0.2}
"""Each prompt's stored probability of being drawn; the drawn ones are LABELLED."""


async def store_design(sessions: Sessions) -> None:
    """An active label budget on the study-like dataset whose draws are its humans' prompts."""
    async with sessions.begin() as session:
        dataset = await session.scalar(select(Dataset).where(Dataset.name == "studylike"))
        assert dataset is not None
        session.add(
            AnnotationConfig(
                dataset_id=dataset.id, k=1, budget=5, policy=SamplingPolicy.ACTIVE, floor=0.2
            )
        )
        prompts = await session.execute(
            select(Prompt.external_id, Prompt.id).where(Prompt.dataset_id == dataset.id)
        )
        session.add_all(
            AnnotationDraw(
                prompt_id=pid,
                dataset_id=dataset.id,
                probability=DESIGN[external],
                selected=external in LABELLED,
                score=0.0,
            )
            for external, pid in prompts.all()
        )


async def test_a_run_report_weights_by_the_datasets_stored_draws(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await store_design(session_maker)
    models = [{"name": m, "source": "imported"} for m in STUDY_MODELS]
    run = await finished_run(session_maker, prompts={"dataset": "studylike"}, models=models)
    section = (await api.get(f"/v1/runs/{run.id}/report")).json()["ppi"]
    assert section["policy"].startswith("active: probability from the judges' disagreement")
    (result,) = section["estimates"]
    assert (result["n_human"], result["n_judge"]) == (5, 8)
    assert result["policy"] == "inverse-probability weights from inclusion"


async def test_a_dataset_report_under_a_design_weights_by_it(
    api: httpx.AsyncClient, session_maker: Sessions
) -> None:
    await add_judge(session_maker)
    await store_design(session_maker)
    params = query(annotators=f"judge-j,{REFERENCE_NAME}")
    section = (await api.get("/v1/datasets/studylike/report", params=params)).json()["ppi"]
    assert "label budget 5 of 8 items" in section["policy"]
    (result,) = section["estimates"]
    rows = {(e["estimand"], e["subject"], e["method"]): e for e in result["estimates"]}
    shifts = []
    for j, model in enumerate(STUDY_MODELS):
        weighted = float(direct_ppi(j, DESIGN).estimate)
        assert rows[("harm_rate", model, "ppi")]["estimate"] == pytest.approx(weighted)
        shifts.append(abs(weighted - float(direct_ppi(j).estimate)))
    assert max(shifts) > 0.01  # the weights matter here
    html = await api.get("/v1/datasets/studylike/report", params={**params, "format": "html"})
    assert "label budget 5 of 8 items" in html.text
    assert "not recorded" not in html.text
