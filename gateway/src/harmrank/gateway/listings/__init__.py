"""The result listings: a dataset's or a run's responses and rankings, paged and exported.

One implementation over a :class:`~harmrank.gateway.listings.scope.ResultScope` (a dataset's
rows, or one run's), mounted as two routers (``datasets_router``, ``runs_router``); the
explorer shows the same scopes.
"""

from harmrank.gateway.listings.api import datasets_router, runs_router

__all__ = ["datasets_router", "runs_router"]
