"""The metrics service's logic: wire models in, library calls, JSON-ready answers out."""

from __future__ import annotations

from typing import Any

from harmrank.metrics.agreement import agreement
from harmrank.metrics.harm_rates import harm_rates
from harmrank.metrics.histograms import complete_rank_histogram, rank_histogram
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.rbo import EMPTY_CONVENTION, rbo
from harmrank.metrics.report import ReportSettings, build_report, win_intervals
from harmrank.metrics.schemas import (
    AgreementRequest,
    OneAnnotatorRequest,
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
    settings = ReportSettings(
        p=request.p, resamples=request.resamples, seed=request.seed, confidence=request.confidence
    )
    annotators = [a.to_rankings(request.models) for a in request.annotators]
    report = build_report(annotators, settings, pairs=request.pairs)
    return dict(to_jsonable(report))
