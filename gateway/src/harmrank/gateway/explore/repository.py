"""The explorer's queries: a scope's prompts and rankings (for the listing), one prompt in full,
the response texts an export writes.

A scope is the result listings' (:class:`~harmrank.gateway.listings.scope.ResultScope`): a
dataset, or a run (its sampled prompts, the responses and judge rankings of its tasks, and the
humans its report included). Every
query goes through an index: prompts by dataset (the unique key leads with ``dataset_id``) or
``run_prompts`` by run, rankings by ``prompt_id``, responses by their unique key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Select, Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import NotFound
from harmrank.gateway.db.models import Annotator, Model, Prompt, Ranking, Response
from harmrank.gateway.db.run_models import SUCCEEDED_STATES, RunPrompt, RunReport, Stage, Task
from harmrank.gateway.listings.scope import ResultScope


@dataclass(frozen=True)
class PromptRow:
    id: int
    external_id: str
    text: str
    category: str | None
    position: int


PromptsQuery = Select[int, str, str, str | None, int]


def prompts_query(scope: ResultScope) -> PromptsQuery:
    query: PromptsQuery
    if scope.run_id is None:
        query = select(
            Prompt.id, Prompt.external_id, Prompt.text, Prompt.category, Prompt.id
        ).where(Prompt.dataset_id == scope.dataset_id)
    else:
        query = (
            select(Prompt.id, Prompt.external_id, Prompt.text, Prompt.category, RunPrompt.position)
            .join(RunPrompt, RunPrompt.prompt_id == Prompt.id)
            .where(RunPrompt.run_id == scope.run_id)
        )
    return query


async def prompts(session: AsyncSession, scope: ResultScope) -> list[PromptRow]:
    """The scope's prompts in the run's sample order, or the dataset's upload order."""
    rows = await session.execute(prompts_query(scope))
    return sorted((PromptRow(*row) for row in rows), key=lambda r: r.position)


@dataclass(frozen=True)
class RankingRow:
    prompt_id: int
    annotator: str
    kind: str
    presentation_key: str
    ranks: list[int]
    presentation: dict[str, Any] | None


def rankings_query(scope: ResultScope) -> Select[Any]:
    query = select(
        Ranking.prompt_id,
        Annotator.name,
        Annotator.kind,
        Ranking.presentation_key,
        Ranking.ranks,
        Ranking.presentation,
    ).join(Annotator, Annotator.id == Ranking.annotator_id)
    if scope.ranking_ids is not None:
        return query.where(Ranking.id.in_(scope.ranking_ids))
    in_dataset = select(Prompt.id).where(Prompt.dataset_id == scope.dataset_id)
    return query.where(Ranking.prompt_id.in_(in_dataset))


async def rankings(session: AsyncSession, scope: ResultScope) -> list[RankingRow]:
    rows = await session.execute(rankings_query(scope).order_by(Ranking.id))
    return [RankingRow(r[0], r[1], str(r[2]), r[3], r[4], r[5]) for r in rows]


async def models(session: AsyncSession, scope: ResultScope) -> list[str]:
    """The models that answered prompts of the scope, in canonical (rank list) order."""
    query = select(Model.name, Model.position).join(Response, Response.model_id == Model.id)
    if scope.response_ids is not None:
        query = query.where(Response.id.in_(scope.response_ids))
    else:
        in_dataset = select(Prompt.id).where(Prompt.dataset_id == scope.dataset_id)
        query = query.where(Response.prompt_id.in_(in_dataset))
    found = await session.execute(query.distinct().order_by(Model.position))
    return [name for name, _ in found]


# Prompt ids per query of the export: the IN list stays bounded whatever the filter keeps.
BATCH = 500


async def response_texts(
    session: AsyncSession, scope: ResultScope, prompt_ids: Sequence[int]
) -> dict[int, dict[str, str]]:
    """Per prompt, each model's response text (the latest stored when a dataset has several)."""
    out: dict[int, dict[str, str]] = {}
    for start in range(0, len(prompt_ids), BATCH):
        query = (
            select(Response.prompt_id, Model.name, Response.text)
            .join(Model, Model.id == Response.model_id)
            .where(Response.prompt_id.in_(prompt_ids[start : start + BATCH]))
            .order_by(Response.id)
        )
        if scope.response_ids is not None:
            query = query.where(Response.id.in_(scope.response_ids))
        for prompt_id, model, text in await session.execute(query):
            out.setdefault(prompt_id, {})[model] = text
    return out


async def prompt_by_external_id(
    session: AsyncSession, scope: ResultScope, external_id: str
) -> Prompt:
    query = select(Prompt).where(
        Prompt.dataset_id == scope.dataset_id, Prompt.external_id == external_id
    )
    if scope.prompt_ids is not None:
        query = query.where(Prompt.id.in_(scope.prompt_ids))
    found = await session.scalar(query)
    if found is None:
        raise NotFound(f"no prompt {external_id!r} in {scope.label}")
    return found


async def responses_of(session: AsyncSession, scope: ResultScope, prompt_id: int) -> list[Any]:
    """(model name, display name, position, response) of one prompt, in model order."""
    query = (
        select(Model.name, Model.display_name, Model.position, Response)
        .join(Model, Model.id == Response.model_id)
        .where(Response.prompt_id == prompt_id)
        .order_by(Model.position, Response.generation_key)
    )
    if scope.response_ids is not None:
        query = query.where(Response.id.in_(scope.response_ids))
    return list(await session.execute(query))


async def rankings_of(session: AsyncSession, scope: ResultScope, prompt_id: int) -> list[Any]:
    """(annotator name, kind, ranking) of one prompt."""
    query = (
        select(Annotator.name, Annotator.kind, Ranking)
        .join(Annotator, Annotator.id == Ranking.annotator_id)
        .where(Ranking.prompt_id == prompt_id)
        .order_by(Annotator.kind, Annotator.name, Ranking.presentation_key)
    )
    if scope.ranking_ids is not None:
        query = query.where(Ranking.id.in_(scope.ranking_ids))
    return list(await session.execute(query))


async def generation_details(
    session: AsyncSession, prompt_id: int
) -> dict[tuple[int, str], dict[str, Any]]:
    """What the generator reported for each generated response of the prompt (model id and
    generation key → the task's result: settings, server info, tokens, finish reason)."""
    found = await session.execute(
        select(Task.model_id, Task.generation_key, Task.result)
        .where(Task.prompt_id == prompt_id, Task.stage == Stage.GENERATE)
        .where(Task.result.is_not(None))
        .order_by(Task.id)
    )
    return {(m, k): r for m, k, r in found if m is not None and k is not None}


async def judge_outcomes(session: AsyncSession, run_id: int, prompt_id: int) -> list[Any]:
    """A run's judge tasks of one prompt that made no ranking: (judge, order, error type,
    message): abstentions and failures, so the page says why a column is missing."""
    found = await session.execute(
        select(Annotator.name, Task.order_index, Task.state, Task.error_type, Task.error_message)
        .join(Annotator, Annotator.id == Task.annotator_id)
        .where(Task.run_id == run_id, Task.prompt_id == prompt_id, Task.stage == Stage.JUDGE)
        .where(Task.state.not_in(SUCCEEDED_STATES), Task.error_type.is_not(None))
        .order_by(Annotator.name, Task.order_index)
    )
    return list(found)


# Distinct weights per model position: a ranking changed in place (a re-import replaces ranks)
# changes the weighted sum unless several changes cancel exactly.
_WEIGHTS = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29)


def _ranks_checksum(dialect: str) -> Any:
    if dialect == "postgresql":
        # One hash of the stored text per ranking: far cheaper than extracting each element.
        text_hash = func.hashtext(cast(Ranking.ranks, Text))
        return func.sum(cast(text_hash, BigInteger) * (Ranking.id % 9973 + 1))
    weighted = sum(
        func.coalesce(Ranking.ranks[i].as_integer(), 0) * w for i, w in enumerate(_WEIGHTS)
    )
    return func.sum((Ranking.id % 9973 + 1) * weighted)


async def fingerprint(session: AsyncSession, scope: ResultScope) -> tuple[Any, ...]:
    """What changes when the scope's listing may change, by aggregates the database computes:
    its prompts, and the responses and rankings of those prompts (counts, newest ids, a
    checksum of every rank), plus, for a run, when its report was stored (it names the humans
    the run includes). Rows of the prompts outside a run count too: a change there rebuilds
    the listing needlessly, never too seldom, and the query stays on the prompt_id indexes."""
    prompt_ids = prompts_query(scope).with_only_columns(Prompt.id).subquery()
    in_scope = select(prompt_ids.c.id)
    queries = [
        select(func.count(), func.max(prompt_ids.c.id)),
        select(func.count(), func.max(Response.id)).where(Response.prompt_id.in_(in_scope)),
        select(
            func.count(), func.max(Ranking.id), _ranks_checksum(session.get_bind().dialect.name)
        ).where(Ranking.prompt_id.in_(in_scope)),
    ]
    if scope.run_id is not None:
        queries.append(select(RunReport.created_at).where(RunReport.run_id == scope.run_id))
    marks: list[Any] = []
    for query in queries:
        marks.extend((await session.execute(query)).one_or_none() or ())
    return tuple(marks)
