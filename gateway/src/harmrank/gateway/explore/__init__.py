"""The explorer: every sample of a dataset or run, with its rankings, behind a content warning."""

from harmrank.gateway.explore.api import page_router, router

__all__ = ["page_router", "router"]
