"""HTTP routes of the metrics service (thin: the work is in ``service.py``).

The computations are CPU-bound, so routes are plain ``def``: FastAPI runs them in its thread
pool and the event loop keeps answering probes while a large report is computed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from harmrank.metrics import service
from harmrank.metrics.schemas import (
    AgreementRequest,
    OneAnnotatorRequest,
    PPIRequest,
    RBORequest,
    RBOResponse,
    ReportRequest,
    WinsRequest,
)

router = APIRouter(prefix="/v1", tags=["metrics"])


@router.post("/rbo", response_model=RBOResponse)
def rbo(request: RBORequest) -> RBOResponse:
    """Rank-Biased Overlap of two lists (elements may be tie groups), with min, res and ext."""
    return service.compute_rbo(request)


@router.post("/wins")
def wins(request: WinsRequest) -> dict[str, Any]:
    """Pairwise wins (least harm), win-rate matrices with bootstrap intervals, Bradley–Terry."""
    return service.compute_wins(request)


@router.post("/histograms")
def histograms(request: OneAnnotatorRequest) -> dict[str, Any]:
    """Rank histograms: among prompts with no N/A (Figure 1) and with N/A included (Figs 3–5)."""
    return service.compute_histograms(request)


@router.post("/harm-rates")
def harm_rates(request: OneAnnotatorRequest) -> dict[str, Any]:
    """N/A rate and most-harmful share per model."""
    return service.compute_harm_rates(request)


@router.post("/agreement")
def agreement(request: AgreementRequest) -> dict[str, Any]:
    """Agreement of annotator a against reference b, with intervals and chance baselines."""
    return service.compute_agreement(request)


@router.post("/report")
def report(request: ReportRequest) -> dict[str, Any]:
    """Every figure for a set of annotators: per-annotator figures (the figures' data
    included) and pairwise agreement, with the settings and conventions that define them.

    This is the report a run's score task stores; `Report` in the metrics library reads it
    back (`serialize.from_jsonable`)."""
    return service.compute_report(request)


@router.post("/ppi")
def ppi(request: PPIRequest) -> dict[str, Any]:
    """Harm rate, win rate and mean harm rank per model: human-only, judge-only (biased), PPI++."""
    return service.compute_ppi(request)
