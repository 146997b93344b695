"""Agreement among the humans of a dataset, their aggregate ranking, and judges against it.

Read from the database, computed by the metrics library in a worker thread (the bootstrap is
CPU work that must not stall the event loop). Every figure carries its parameters; NaN
(undefined) is sent as null.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import InvalidInput
from harmrank.gateway.annotation import repository as repo
from harmrank.gateway.annotation.schemas import Agreement
from harmrank.gateway.datasets import repository as datasets_repo
from harmrank.gateway.db.models import AnnotatorKind
from harmrank.gateway.results.repository import annotator_kinds, load_rankings
from harmrank.metrics.aggregate_humans import (
    NaRule,
    ReferenceSpec,
    ReferenceSummary,
    human_reference,
    versus_reference,
)
from harmrank.metrics.agreement import AgreementFigure, AgreementResult, agreement
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.rankings import AnnotatorRankings

HumanSet = Literal["all", "page"]
HUMAN_SETS = {
    "all": "every annotator of kind human with rankings in the dataset",
    "page": "the annotators who signed in to this dataset's annotation page",
}


@dataclass(frozen=True)
class AgreementParams(AgreementSettings):
    na_rule: NaRule = "majority"
    min_annotators: int = 1
    humans: HumanSet = "all"

    def stated(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "humans_text": HUMAN_SETS[self.humans],
            "min_annotators_text": "items in the human reference need this many annotators",
            "judges": "every annotator of kind judge, rankings with presentation_key ''",
        }


def _num(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def figure_out(fig: AgreementFigure) -> dict[str, Any]:
    return {
        "metric": fig.metric if fig.metric != "rbo" else f"rbo_{fig.params.get('lists')}",
        "value": _num(fig.value),
        "ci_low": _num(fig.ci_low),
        "ci_high": _num(fig.ci_high),
        "chance": _num(fig.chance),
        "n": fig.n,
        "params": dict(fig.params),
    }


def result_out(result: AgreementResult) -> dict[str, Any]:
    return {
        "a": result.a,
        "b": result.b,
        "n_shared_prompts": result.n_shared_prompts,
        "figures": [figure_out(f) for f in result.figures],
        "by_category": {c: [figure_out(f) for f in figs] for c, figs in result.by_category.items()},
    }


def _shares_prompts(a: AnnotatorRankings, b: AnnotatorRankings) -> bool:
    return bool(set(a.prompts) & set(b.prompts))


def _pairwise(humans: Sequence[AnnotatorRankings], s: AgreementParams) -> list[dict[str, Any]]:
    return [
        result_out(agreement(a, b, s)) for a, b in combinations(humans, 2) if _shares_prompts(a, b)
    ]


def _aggregate_out(summary: ReferenceSummary) -> dict[str, Any]:
    return {
        "params": summary.params,
        "n_items": summary.n_items,
        "n_reference_items": summary.n_reference_items,
        "groups": summary.groups,
        "n_ties": summary.n_ties,
        "ties": list(summary.ties),
        "note": summary.note,
    }


def _judges(
    judges: Sequence[AnnotatorRankings], reference: AnnotatorRankings, s: AgreementParams
) -> list[dict[str, Any]]:
    out = []
    for judge in judges:
        if not _shares_prompts(judge, reference):
            out.append({"a": judge.annotator, "b": reference.annotator, "n_shared_prompts": 0})
            continue
        result = versus_reference(judge, reference, s)
        out.append({**result_out(result), "split_by": "human agreement group of the item"})
    return out


def compute(
    name: str,
    humans: Sequence[AnnotatorRankings],
    judges: Sequence[AnnotatorRankings],
    s: AgreementParams,
) -> Agreement:
    """Every figure; CPU only, no I/O."""
    if not humans:
        raise InvalidInput(f"dataset {name!r} has no human rankings yet")
    spec = ReferenceSpec(tuple(h.annotator for h in humans), s.na_rule, s.min_annotators)
    made = human_reference(humans, spec)
    summary, reference = made.summary, made.rankings
    return Agreement(
        dataset=name,
        models=list(humans[0].models),
        parameters={**s.stated(), "human_reference": spec.stated()},
        humans=[h.annotator for h in humans],
        judges=[j.annotator for j in judges],
        items={
            "ranked": summary.n_items,
            "by_annotator_count": summary.items_by_annotator_count,
        },
        krippendorff_alpha=summary.krippendorff_alpha,
        pairwise_exact_pooled=summary.pairwise_exact_pooled,
        pairwise=_pairwise(humans, s),
        aggregate=_aggregate_out(summary),
        judges_vs_humans=_judges(judges, reference, s) if reference.prompts else [],
    )


async def human_agreement(session: AsyncSession, name: str, s: AgreementParams) -> Agreement:
    dataset = await datasets_repo.dataset_id_by_name(session, name)
    everyone = await load_rankings(session, name)
    kinds = await annotator_kinds(session, list(everyone))
    page = set(await repo.annotators_invited(session, dataset))
    humans = [
        r
        for n, r in everyone.items()
        if kinds[n] == AnnotatorKind.HUMAN and (s.humans == "all" or n in page)
    ]
    judges = [r for n, r in everyone.items() if kinds[n] == AnnotatorKind.JUDGE]
    return await asyncio.to_thread(compute, name, humans, judges, s)
