"""A run's own results: the responses and rankings it generated or reused, paged and exported."""

from harmrank.gateway.run_results.api import router

__all__ = ["router"]
