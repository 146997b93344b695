"""The queries that say which result rows belong to a run (a run's result scope).

A run's rows are not marked as such (a result is shared by every run that needs it), so they
are found through the run's tasks: a response is the run's when its natural key is a generate
task's of the run, a judge ranking when its key is a judge task's. Human rankings join when the
run's report included humans: those annotators' per-prompt rankings of the run's prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CompoundSelect, Select, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import NotFound
from harmrank.gateway.db.models import Annotator, Dataset, Model, Ranking, Response
from harmrank.gateway.db.run_models import Run, RunPrompt, RunReport, Stage, Task


@dataclass(frozen=True)
class RunRow:
    id: int
    dataset_id: int
    dataset: str
    spec: dict[str, Any]


async def run_row(session: AsyncSession, run_id: int) -> RunRow:
    found = await session.execute(
        select(Run.id, Run.dataset_id, Dataset.name, Run.spec)
        .join(Dataset, Dataset.id == Run.dataset_id)
        .where(Run.id == run_id)
    )
    row = found.one_or_none()
    if row is None:
        raise NotFound(f"no run {run_id}")
    return RunRow(*row)


def prompt_ids(run_id: int) -> Select[int]:
    return select(RunPrompt.prompt_id).where(RunPrompt.run_id == run_id)


def response_ids(run_id: int) -> Select[int]:
    """Responses whose (prompt, model, generation key) is one of the run's generate tasks."""
    return (
        select(Response.id)
        .join(
            Task,
            (Task.prompt_id == Response.prompt_id)
            & (Task.model_id == Response.model_id)
            & (Task.generation_key == Response.generation_key),
        )
        .where(Task.run_id == run_id, Task.stage == Stage.GENERATE)
    )


def ranking_ids(run_id: int, humans: Sequence[str]) -> CompoundSelect[int]:
    """The judge rankings of the run's judge tasks, and the named humans' rankings of its
    prompts (their per-prompt ones, with the empty presentation key)."""
    judged = (
        select(Ranking.id)
        .join(
            Task,
            (Task.annotator_id == Ranking.annotator_id)
            & (Task.prompt_id == Ranking.prompt_id)
            & (Task.presentation_key == Ranking.presentation_key),
        )
        .where(Task.run_id == run_id, Task.stage == Stage.JUDGE)
    )
    human = (
        select(Ranking.id)
        .join(Annotator, Annotator.id == Ranking.annotator_id)
        .where(
            Annotator.name.in_(list(humans)),
            Ranking.presentation_key == "",
            Ranking.prompt_id.in_(prompt_ids(run_id)),
        )
    )
    return union(judged, human)


async def model_names(session: AsyncSession, names: Sequence[str]) -> list[str]:
    """The run's models in position order, the order of every rank list (read only: a run's
    models were registered when it was planned)."""
    found = await session.scalars(
        select(Model.name).where(Model.name.in_(list(names))).order_by(Model.position)
    )
    return list(found)


async def included_humans(session: AsyncSession, run_id: int) -> list[str]:
    """The humans the run's report included; none before the run is scored."""
    report: dict[str, Any] | None = await session.scalar(
        select(RunReport.report).where(RunReport.run_id == run_id)
    )
    humans = ((report or {}).get("run") or {}).get("humans") or {}
    included = humans.get("included") or []
    return [str(name) for name in included]
