"""The metrics service: pure computation behind HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from harmrank.common.app import create_service_app
from harmrank.metrics.api import router
from harmrank.metrics.settings import MetricsSettings

DESCRIPTION = (
    "Harm rankings, Rank-Biased Overlap, pairwise wins (least harm), rank histograms and "
    "agreement statistics between annotators. Every answer names the variant it computed."
)


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    """Build the metrics service app (``uvicorn --factory harmrank.metrics.app:create_app``)."""
    return create_service_app(
        service="metrics",
        settings=settings or MetricsSettings(),
        routers=[router],
        description=DESCRIPTION,
    )
