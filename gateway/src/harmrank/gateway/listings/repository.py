"""The queries of the result listings: a scope's responses and rankings, and which rows a run's
scope holds.

Listing functions page by keyset on the row id (``after``), never by offset: a page costs the
same wherever it is, and rows inserted meanwhile neither repeat nor vanish. They take a dataset
id, optional filters, and optional restrictions to prompt and row ids (ids or a subquery of
them), so a run's scope (:mod:`harmrank.gateway.listings.scope`) reuses them for its own rows.
They answer the listings' wire items (:mod:`harmrank.gateway.datasets.schemas`) directly: the
query selects exactly an item's fields, so a row has one type from the database to the client.

A run's rows are not marked as such (a result is shared by every run that needs it), so they
are found through the run's tasks: a response is the run's when its natural key is a generate
task's of the run, a judge ranking when its key is a judge task's. Human rankings join when the
run's report included humans: those annotators' per-prompt rankings of the run's prompts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, CompoundSelect, Row, Select, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from harmrank.common.errors import NotFound
from harmrank.gateway.datasets.schemas import RankingItem, ResponseItem
from harmrank.gateway.db import Annotator, AnnotatorKind, Dataset, Model, Prompt, Ranking, Response
from harmrank.gateway.db.run_models import Run, RunPrompt, RunReport, Stage, Task
from harmrank.gateway.study.notation import format_ranks

PromptIds = Collection[int] | Select[int]
RowIds = Collection[int] | Select[int] | CompoundSelect[int]
"""Row ids, or a query of them, that a listing keeps to (a run's own results, say)."""


class _Keyed(Protocol):
    @property
    def id(self) -> int: ...


_Item = TypeVar("_Item", bound=_Keyed)
EXPORT_BATCH = 500

# --- the listings ---------------------------------------------------------------------------

_RESPONSES = (
    select(
        Response.id,
        Prompt.external_id.label("prompt_id"),
        Prompt.text.label("prompt"),
        Model.name.label("model"),
        Response.text,
        Response.generation_key,
        Response.source,
        Response.created_at,
    )
    .join(Response.prompt)
    .join(Response.model)
)
_RANKINGS = (
    select(
        Ranking.id,
        Annotator.name.label("annotator"),
        Annotator.kind.label("annotator_kind"),
        Prompt.external_id.label("prompt_id"),
        Ranking.ranks,
        Ranking.raw_value,
        Ranking.normalisations,
        Ranking.source,
        Ranking.presentation_key,
        Ranking.created_at,
    )
    .join(Ranking.prompt)
    .join(Ranking.annotator)
)


async def list_responses(
    session: AsyncSession,
    dataset_id: int,
    *,
    model: str | None = None,
    prompt: str | None = None,
    prompt_ids: PromptIds | None = None,
    row_ids: RowIds | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[ResponseItem]:
    """Responses in id order; ``model`` is a model name, ``prompt`` a prompt's external id."""
    conditions = _in_dataset(dataset_id, prompt, prompt_ids)
    if model is not None:
        conditions.append(Model.name == model)
    rows = await _keyset(session, _RESPONSES, Response.id, conditions, row_ids, after, limit)
    return [ResponseItem(**row._asdict()) for row in rows]


async def list_rankings(
    session: AsyncSession,
    dataset_id: int,
    *,
    annotator: str | None = None,
    prompt: str | None = None,
    model: str | None = None,
    prompt_ids: PromptIds | None = None,
    row_ids: RowIds | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[RankingItem]:
    """Rankings in id order; ``model`` keeps those of prompts that model has a response to."""
    conditions = _in_dataset(dataset_id, prompt, prompt_ids)
    if annotator is not None:
        conditions.append(Annotator.name == annotator)
    if model is not None:
        answered = select(Response.prompt_id).join(Response.model).where(Model.name == model)
        conditions.append(Ranking.prompt_id.in_(answered))
    rows = await _keyset(session, _RANKINGS, Ranking.id, conditions, row_ids, after, limit)
    return [_ranking_item(row) for row in rows]


def _ranking_item(row: Row[*tuple[Any, ...]]) -> RankingItem:
    fields = row._asdict()
    fields["annotator_kind"] = AnnotatorKind(fields["annotator_kind"]).value
    return RankingItem(**fields, ranking=format_ranks(tuple(fields["ranks"])))


def _in_dataset(
    dataset_id: int, prompt: str | None, prompt_ids: PromptIds | None
) -> list[ColumnElement[bool]]:
    """The conditions every listing starts from: the dataset, and the prompt filters."""
    conditions: list[ColumnElement[bool]] = [Prompt.dataset_id == dataset_id]
    if prompt is not None:
        conditions.append(Prompt.external_id == prompt)
    if prompt_ids is not None:
        conditions.append(Prompt.id.in_(prompt_ids))
    return conditions


async def _keyset(
    session: AsyncSession,
    query: Select[*tuple[Any, ...]],
    key: InstrumentedAttribute[int],
    conditions: list[ColumnElement[bool]],
    row_ids: RowIds | None,
    after: int | None,
    limit: int,
) -> Sequence[Row[*tuple[Any, ...]]]:
    """At most ``limit`` rows of ``query`` in ``key`` order after ``after`` (None: the first)."""
    if row_ids is not None:
        conditions.append(key.in_(row_ids))
    if after is not None:
        conditions.append(key > after)
    found = await session.execute(query.where(*conditions).order_by(key).limit(limit))
    return found.all()


async def iter_all(
    listing: Callable[..., Awaitable[Sequence[_Item]]],
    session: AsyncSession,
    dataset_id: int,
    **filters: Any,
) -> AsyncIterator[_Item]:
    """Every row ``listing`` (a listing function above) finds with ``filters``, fetched
    ``EXPORT_BATCH`` rows at a time, so memory stays flat, until a short batch ends it."""
    after: int | None = None
    while True:
        batch = await listing(session, dataset_id, after=after, limit=EXPORT_BATCH, **filters)
        for item in batch:
            yield item
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].id


# --- a run's rows ---------------------------------------------------------------------------


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


def run_prompt_ids(run_id: int) -> Select[int]:
    return select(RunPrompt.prompt_id).where(RunPrompt.run_id == run_id)


def run_response_ids(run_id: int) -> Select[int]:
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


def run_ranking_ids(run_id: int, humans: Sequence[str]) -> CompoundSelect[int]:
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
            Ranking.prompt_id.in_(run_prompt_ids(run_id)),
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
