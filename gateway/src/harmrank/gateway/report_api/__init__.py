"""Reports over HTTP: a run's report as HTML, any annotators' report and agreement on a dataset."""

from harmrank.gateway.report_api.api import datasets_router, runs_router

__all__ = ["datasets_router", "runs_router"]
