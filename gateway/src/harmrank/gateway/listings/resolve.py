"""Resolving a dataset's name or a run's id into its :class:`ResultScope`, and its models."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.datasets import repository as datasets_repo
from harmrank.gateway.listings import repository as repo
from harmrank.gateway.listings.scope import ResultScope


async def dataset_scope(session: AsyncSession, name: str) -> ResultScope:
    """Every row of the dataset; an unknown name is a 404."""
    dataset_id = await datasets_repo.dataset_id_by_name(session, name)
    return ResultScope(dataset_id=dataset_id, dataset=name)


async def run_scope(session: AsyncSession, run_id: int) -> ResultScope:
    """The run's prompts, the responses and judge rankings of its tasks, and the rankings of
    the humans its report included; an unknown run is a 404."""
    run = await repo.run_row(session, run_id)
    humans = await repo.included_humans(session, run_id)
    return ResultScope(
        dataset_id=run.dataset_id,
        dataset=run.dataset,
        run_id=run.id,
        prompt_ids=repo.run_prompt_ids(run_id),
        response_ids=repo.run_response_ids(run_id),
        ranking_ids=repo.run_ranking_ids(run_id, humans),
        # The stored spec was validated when the run was made: its models are listed by name
        # (read without validating it again: a page needs nothing else of it).
        run_models=tuple(str(model["name"]) for model in run.spec.get("models", ())),
    )


async def scope_models(session: AsyncSession, scope: ResultScope) -> list[str]:
    """The scope's models in position order: the order of every rank list it shows."""
    if scope.run_models is None:
        return list(await datasets_repo.dataset_models(session, scope.dataset_id))
    return await repo.model_names(session, scope.run_models)
