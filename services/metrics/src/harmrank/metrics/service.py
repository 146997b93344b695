"""The metrics service's logic: wire models in, library calls, JSON-ready answers out."""

from __future__ import annotations

from typing import Any

from harmrank.metrics.agreement import agreement
from harmrank.metrics.harm_rates import harm_rates
from harmrank.metrics.histograms import complete_rank_histogram, rank_histogram
from harmrank.metrics.jury import jury
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.ppi_estimates import ppi_estimates
from harmrank.metrics.rbo import EMPTY_CONVENTION, rbo
from harmrank.metrics.report import build_report, win_intervals
from harmrank.metrics.schemas import (
    AgreementRequest,
    OneAnnotatorRequest,
    PPIRequest,
    RBORequest,
    RBOResponse,
    ReportRequest,
    WinsRequest,
)
from harmrank.metrics.serialize import to_jsonable
from harmrank.metrics.wins import bradley_terry, pairwise_wins


def compute_rbo(request: RBORequest) -> RBOResponse:
    result = rbo(request.s, request.t, p=request.p, variant=request.variant, ties=request.ties)
    return RBOResponse(**to_jsonable(result), empty_convention=EMPTY_CONVENTION)


def compute_wins(request: WinsRequest) -> dict[str, Any]:
    rankings = request.annotator.to_rankings(request.models)
    intervals = win_intervals(
        rankings, resamples=request.resamples, confidence=request.confidence, seed=request.seed
    )
    return {
        "wins": to_jsonable(pairwise_wins(rankings)),
        "intervals": to_jsonable(intervals),
        "bradley_terry": to_jsonable(bradley_terry(rankings)),
    }


def compute_histograms(request: OneAnnotatorRequest) -> dict[str, Any]:
    rankings = request.annotator.to_rankings(request.models)
    return {
        "complete": to_jsonable(complete_rank_histogram(rankings)),
        "all": to_jsonable(rank_histogram(rankings)),
    }


def compute_harm_rates(request: OneAnnotatorRequest) -> dict[str, Any]:
    return dict(to_jsonable(harm_rates(request.annotator.to_rankings(request.models))))


def compute_agreement(request: AgreementRequest) -> dict[str, Any]:
    settings = AgreementSettings(
        p=request.p,
        resamples=request.resamples,
        seed=request.seed,
        confidence=request.confidence,
        rbo_variant=request.rbo_variant,
        rbo_ties=request.rbo_ties,
    )
    a, b = request.a.to_rankings(request.models), request.b.to_rankings(request.models)
    result = agreement(a, b, settings)
    return dict(to_jsonable(result))


def compute_report(request: ReportRequest) -> dict[str, Any]:
    annotators = [a.to_rankings(request.models) for a in request.annotators]
    report = build_report(
        annotators,
        request.report_settings(),
        pairs=request.pairs,
        ppi=request.ppi_spec(),
        clusters=request.clusters(annotators),
        run=request.run_facts(),
    )
    return dict(to_jsonable(report))


def compute_ppi(request: PPIRequest) -> dict[str, Any]:
    human = request.human.to_rankings(request.models)
    judges = [j.to_rankings(request.models) for j in request.judges]
    made = jury(judges) if request.jury else None
    predictors = judges + ([made.rankings] if made else [])
    results = [
        ppi_estimates(human, p, inclusion=request.inclusion, confidence=request.confidence)
        for p in predictors
    ]
    return {
        "results": [{**to_jsonable(r), "params": r.params()} for r in results],
        "jury": made.params() if made else None,
    }
