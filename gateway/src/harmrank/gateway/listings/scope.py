"""What a result listing shows: every row of a dataset, or exactly one run's.

A run's rows are not marked as such (a result is shared by every run that needs it): they are
the queries of :mod:`harmrank.gateway.listings.repository`, kept here as subqueries the listings
and the explorer restrict themselves to. :mod:`harmrank.gateway.listings.resolve` makes a scope.
This module imports no other of the gateway's: the packages whose routes mount the listings
import it while they are being imported themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import CompoundSelect, Select


@dataclass(frozen=True)
class ResultScope:
    """A dataset's rows (no restriction), or a run's (``run_id`` and the subqueries set)."""

    dataset_id: int
    dataset: str
    run_id: int | None = None
    prompt_ids: Select[int] | None = None
    response_ids: Select[int] | None = None
    ranking_ids: CompoundSelect[int] | None = None
    run_models: tuple[str, ...] | None = None
    """The run's models as its spec names them; None for a dataset."""

    @property
    def label(self) -> str:
        """How a page names the scope."""
        if self.run_id is None:
            return f"dataset {self.dataset}"
        return f"run {self.run_id} (dataset {self.dataset})"

    @property
    def file_stem(self) -> str:
        """How an export's file name starts."""
        return self.dataset if self.run_id is None else f"run-{self.run_id}"
