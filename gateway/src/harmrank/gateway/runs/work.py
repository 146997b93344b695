"""The database side of each stage: what a claimed task's call needs, and storing what it made.

No transaction stays open across a downstream call. ``load_batch`` reads what a claimed batch of
generate and judge tasks needs, in the transaction that claimed it, a few statements for the
whole batch; ``load_score`` reads a score task's inputs in a read transaction of its own.
``response_made``/``ranking_made`` turn a call's answer into the row to store, and
``store_made`` inserts those rows insert-if-absent, in the transaction that marks their tasks
done. A load answers :data:`ALREADY_STORED` when the result exists already (another run made it
since this one was planned): the task is then settled as ``reused``, uncalled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.contracts.generation import GenerationParams, GenerationResult
from harmrank.gateway.db.models import (
    STUDY_GENERATION_KEY,
    Annotator,
    AnnotatorKind,
    Model,
    Prompt,
    Ranking,
    Response,
)
from harmrank.gateway.db.run_models import Run, RunPrompt, Stage, Task, TaskState
from harmrank.gateway.results import dataset_models
from harmrank.gateway.runs import planner, store
from harmrank.gateway.runs.queue import ClaimedTask, TaskFailed
from harmrank.gateway.runs.schemas import RunCreate
from harmrank.metrics.aggregate_humans import REFERENCE_NAME, ReferenceSpec, human_reference
from harmrank.metrics.rankings import AnnotatorRankings, ranking_problem
from harmrank.metrics.report import ReportSettings, reference_pairs

ALREADY_STORED: Final = "already_stored"
JUDGE_ABSTAINED: Final = "judge_abstained"
_HUMAN_KINDS = (AnnotatorKind.HUMAN, AnnotatorKind.EXPERT, AnnotatorKind.AGGREGATE)


@dataclass(frozen=True)
class GenerateWork:
    prompt_id: str
    """The prompt's external id, echoed by the generator."""
    prompt: str
    model: str
    params: GenerationParams


@dataclass(frozen=True)
class JudgeWork:
    prompt_id: str
    prompt: str
    responses: dict[str, str]
    """Response text by model, in canonical model order."""
    judge: str
    order_index: int


@dataclass(frozen=True)
class Judgment:
    """One judge's ranking of one presentation order."""

    ranks: list[int]
    """In canonical model order (the order of ``JudgeWork.responses``)."""
    raw_text: str
    presentation: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreWork:
    annotators: list[AnnotatorRankings]
    pairs: list[tuple[str, str]]
    settings: ReportSettings
    notes: dict[str, Any]


async def run_spec(session: AsyncSession, run_id: int) -> RunCreate:
    spec = await session.scalar(select(Run.spec).where(Run.id == run_id))
    return RunCreate.model_validate(spec)


def _response_key(task: ClaimedTask) -> store.ResponseKey:
    assert task.prompt_id is not None
    assert task.model_id is not None
    return (task.prompt_id, task.model_id, task.generation_key or "")


def _ranking_key(task: ClaimedTask) -> store.RankingKey:
    assert task.annotator_id is not None
    assert task.prompt_id is not None
    return (task.annotator_id, task.prompt_id, task.presentation_key or "")


# --- generate and judge: a claimed batch --------------------------------------------------

Loaded = GenerateWork | JudgeWork | str | Exception
"""What a claimed generate or judge task needs: its work, :data:`ALREADY_STORED`, or the
exception building its work raised. The worker raises that when it works the task, so the task
fails alone, by the usual rules, and the rest of its batch goes on."""


@dataclass(frozen=True)
class Made:
    """A task's result, to insert if absent, and what to keep on the task about the call."""

    table: type[Response] | type[Ranking]
    row: dict[str, Any]
    details: dict[str, Any]


async def load_batch(session: AsyncSession, tasks: Sequence[ClaimedTask]) -> dict[int, Loaded]:
    """What the batch's generate and judge tasks need, by task id: a few statements for the
    whole batch, whatever its size. Score tasks are left out (see :func:`load_score`)."""
    generates = [t for t in tasks if t.stage == Stage.GENERATE]
    judges = [t for t in tasks if t.stage == Stage.JUDGE]
    if not generates and not judges:
        return {}
    specs = await _run_specs(session, {t.run_id for t in [*generates, *judges]})
    prompts = await _prompts(session, {t.prompt_id for t in [*generates, *judges]})
    loaded: dict[int, Loaded] = {}
    if generates:
        loaded |= await _load_generates(session, generates, specs, prompts)
    if judges:
        loaded |= await _load_judges(session, judges, specs, prompts)
    return loaded


async def store_made(session: AsyncSession, made: Sequence[Made]) -> None:
    """Insert the results if absent, one statement per table."""
    for table in (Response, Ranking):
        await store.insert_if_absent(session, table, [m.row for m in made if m.table is table])


_Prompts = dict[int | None, tuple[str, str]]
"""Prompt id -> (external id, text)."""


async def _run_specs(session: AsyncSession, run_ids: set[int]) -> dict[int, RunCreate]:
    found = await session.execute(select(Run.id, Run.spec).where(Run.id.in_(run_ids)))
    return {run_id: RunCreate.model_validate(spec) for run_id, spec in found}


async def _prompts(session: AsyncSession, prompt_ids: set[int | None]) -> _Prompts:
    found = await session.execute(
        select(Prompt.id, Prompt.external_id, Prompt.text).where(Prompt.id.in_(prompt_ids))
    )
    return {prompt_id: (external_id, text) for prompt_id, external_id, text in found}


def _each(
    tasks: Sequence[ClaimedTask], build: Callable[[ClaimedTask], Loaded]
) -> dict[int, Loaded]:
    loaded: dict[int, Loaded] = {}
    for task in tasks:
        try:
            loaded[task.id] = build(task)
        except Exception as exc:  # kept for the worker to fail this task with, alone
            loaded[task.id] = exc
    return loaded


# --- generate ------------------------------------------------------------------------------


async def _load_generates(
    session: AsyncSession,
    tasks: Sequence[ClaimedTask],
    specs: dict[int, RunCreate],
    prompts: _Prompts,
) -> dict[int, Loaded]:
    stored = await store.existing_among(session, Response, [_response_key(t) for t in tasks])
    found = await session.execute(
        select(Model.id, Model.name).where(Model.id.in_({t.model_id for t in tasks}))
    )
    names: dict[int | None, str] = dict(found.all())

    def build(task: ClaimedTask) -> Loaded:
        if _response_key(task) in stored:
            return ALREADY_STORED
        if task.generation_key == STUDY_GENERATION_KEY:
            raise TaskFailed(
                planner.MISSING_IMPORT, "no imported response to this prompt", transient=False
            )
        spec = next(m for m in specs[task.run_id].models if m.name == names[task.model_id])
        external_id, text = prompts[task.prompt_id]
        return GenerateWork(external_id, text, spec.name, spec.params)

    return _each(tasks, build)


def response_made(task: ClaimedTask, result: GenerationResult) -> Made:
    """The response to store, and what to keep on the task about the call."""
    prompt_id, model_id, key = _response_key(task)
    row = {
        "prompt_id": prompt_id,
        "model_id": model_id,
        "generation_key": key,
        "text": result.text,
        "source": f"run {task.run_id} task {task.id}",
    }
    return Made(Response, row, result.model_dump(mode="json", exclude={"text", "prompt_id"}))


# --- judge ---------------------------------------------------------------------------------


async def _load_judges(
    session: AsyncSession,
    tasks: Sequence[ClaimedTask],
    specs: dict[int, RunCreate],
    prompts: _Prompts,
) -> dict[int, Loaded]:
    stored = await store.existing_among(session, Ranking, [_ranking_key(t) for t in tasks])
    models = {r: await planner.run_models(session, specs[r]) for r in {t.run_id for t in tasks}}
    model_ids = {m.id for run_models in models.values() for m in run_models}
    texts = await _response_texts(session, {t.prompt_id for t in tasks}, model_ids)
    found = await session.execute(
        select(Annotator.id, Annotator.name).where(
            Annotator.id.in_({t.annotator_id for t in tasks})
        )
    )
    judges: dict[int | None, str] = dict(found.all())

    def build(task: ClaimedTask) -> Loaded:
        if _ranking_key(task) in stored:
            return ALREADY_STORED
        assert task.order_index is not None
        external_id, text = prompts[task.prompt_id]
        responses = _responses_of(texts, task.prompt_id, models[task.run_id])
        return JudgeWork(external_id, text, responses, judges[task.annotator_id], task.order_index)

    return _each(tasks, build)


_Texts = dict[store.ResponseKey, str]


async def _response_texts(
    session: AsyncSession, prompt_ids: set[int | None], model_ids: set[int]
) -> _Texts:
    found = await session.execute(
        select(Response.prompt_id, Response.model_id, Response.generation_key, Response.text).where(
            Response.prompt_id.in_(prompt_ids), Response.model_id.in_(model_ids)
        )
    )
    return {(prompt_id, model_id, key): text for prompt_id, model_id, key, text in found}


def _responses_of(
    texts: _Texts, prompt_id: int | None, models: list[planner.RunModel]
) -> dict[str, str]:
    """The prompt's response text by model, in canonical model order."""
    assert prompt_id is not None
    keys = {m.name: (prompt_id, m.id, m.generation_key) for m in models}
    missing = [name for name, key in keys.items() if key not in texts]
    if missing:
        message = f"no response of {', '.join(missing)}"
        raise TaskFailed("missing_response", message, transient=False)
    return {name: texts[key] for name, key in keys.items()}


def ranking_made(task: ClaimedTask, work: JudgeWork, judgment: Judgment) -> Made:
    """The ranking to store (a judgment that is no valid ranking fails the task), and what
    to keep on the task about the call."""
    problem = ranking_problem(judgment.ranks, len(work.responses))
    if problem is not None:
        raise TaskFailed("invalid_ranking", f"{judgment.ranks}: {problem}", transient=False)
    annotator_id, prompt_id, key = _ranking_key(task)
    row = {
        "annotator_id": annotator_id,
        "prompt_id": prompt_id,
        "ranks": judgment.ranks,
        "raw_value": judgment.raw_text,
        "normalisations": [],
        "source": f"run {task.run_id} task {task.id}",
        "presentation": judgment.presentation,
        "presentation_key": key,
    }
    return Made(Ranking, row, judgment.details)


# --- score ---------------------------------------------------------------------------------


async def load_score(session: AsyncSession, task: ClaimedTask) -> ScoreWork:
    spec = await run_spec(session, task.run_id)
    models = await planner.run_models(session, spec)
    names = tuple(m.name for m in models)
    prompts = await _run_prompts(session, task.run_id)
    judges = await _judge_rankings(session, task.run_id, names, prompts)
    humans, note = await _human_rankings(session, task.run_id, models, prompts)
    annotators = [a for a in [*judges, *humans] if a.prompts]
    if not any(a.prompts for a in judges):
        raise TaskFailed(
            "nothing_to_score", "no judge ranked any prompt of the run", transient=False
        )
    aggregated = tuple(note.get("reference_aggregates") or ())
    made_by = spec.metrics.human_reference
    reference = (
        ReferenceSpec(aggregated, made_by.na_rule, made_by.min_annotators) if aggregated else None
    )
    settings = ReportSettings(
        p=spec.metrics.p,
        resamples=spec.metrics.resamples,
        seed=spec.metrics.seed,
        human_reference=reference,
    )
    notes = {
        "run_id": task.run_id,
        "prompts": len(prompts),
        "judges": {a.annotator: len(a.prompts) for a in judges},
        "humans": note,
        "judge_outcomes": await _judge_outcomes(session, task.run_id),
    }
    return ScoreWork(annotators, _pairs(judges, annotators, reference), settings, notes)


_PromptInfo = dict[int, tuple[str, str | None]]
"""Prompt id -> (external id, category), in the run's order."""


async def _run_prompts(session: AsyncSession, run_id: int) -> _PromptInfo:
    found = await session.execute(
        select(Prompt.id, Prompt.external_id, Prompt.category)
        .join(RunPrompt, RunPrompt.prompt_id == Prompt.id)
        .where(RunPrompt.run_id == run_id)
        .order_by(RunPrompt.position)
    )
    return {pid: (external, category) for pid, external, category in found}


async def _judge_rankings(
    session: AsyncSession, run_id: int, models: tuple[str, ...], prompts: _PromptInfo
) -> list[AnnotatorRankings]:
    """Each judge's ranking per prompt; several presentation orders are combined into one."""
    found = await session.execute(
        select(Annotator.name, Ranking.prompt_id, Ranking.ranks)
        .join(Task, Task.annotator_id == Annotator.id)
        .join(
            Ranking,
            (Ranking.annotator_id == Task.annotator_id)
            & (Ranking.prompt_id == Task.prompt_id)
            & (Ranking.presentation_key == Task.presentation_key),
        )
        .where(Task.run_id == run_id, Task.stage == Stage.JUDGE)
        .order_by(Annotator.id, Task.order_index)
    )
    orders: defaultdict[str, defaultdict[int, list[list[int]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for judge, prompt_id, ranks in found:
        orders[judge][prompt_id].append(ranks)
    spec_judges = [j.name for j in (await run_spec(session, run_id)).judges]
    return [_rankings(j, models, prompts, _combined(orders[j])) for j in spec_judges]


async def _judge_outcomes(session: AsyncSession, run_id: int) -> dict[str, dict[str, Any]]:
    """Per judge, what became of its judge tasks: ranked (``repaired``: after the one repair
    turn), abstained (with the count of each reason), or failed otherwise."""
    found = await session.execute(
        select(
            Annotator.name, Task.state, Task.error_type, Task.error_message, Ranking.presentation
        )
        .join(Annotator, Annotator.id == Task.annotator_id)
        .outerjoin(
            Ranking,
            (Ranking.annotator_id == Task.annotator_id)
            & (Ranking.prompt_id == Task.prompt_id)
            & (Ranking.presentation_key == Task.presentation_key),
        )
        .where(Task.run_id == run_id, Task.stage == Stage.JUDGE)
        .order_by(Task.id)
    )
    outcomes: dict[str, dict[str, Any]] = {}
    for judge, state, error_type, message, presentation in found:
        counts = outcomes.setdefault(
            judge,
            {"ranked": 0, "repaired": 0, "abstained": 0, "failed": 0, "abstained_because": {}},
        )
        if presentation is not None:
            counts["ranked"] += 1
            counts["repaired"] += bool(presentation.get("repaired"))
        elif error_type == JUDGE_ABSTAINED:
            counts["abstained"] += 1
            reason = (message or "").partition(":")[0] or "unknown"
            counts["abstained_because"][reason] = counts["abstained_because"].get(reason, 0) + 1
        elif state in (TaskState.FAILED, TaskState.CANCELLED):
            counts["failed"] += 1
    return outcomes


def _combined(by_prompt: dict[int, list[list[int]]]) -> dict[int, list[int]]:
    return {p: consensus(rankings) for p, rankings in by_prompt.items()}


def consensus(rankings: list[list[int]]) -> list[int]:
    """One ranking from several orders, by the judge service's rule: harmful by strict
    majority; ordered by mean rank (N/A = 0), then most-harmful count, then model order."""
    if len(rankings) == 1:
        return rankings[0]
    n = len(rankings[0])
    means = [sum(r[m] for r in rankings) / len(rankings) for m in range(n)]
    tops = [sum(1 for r in rankings if r[m] != 0 and r[m] == max(r)) for m in range(n)]
    harmful = [m for m in range(n) if 2 * sum(1 for r in rankings if r[m]) > len(rankings)]
    ranks = [0] * n
    for rank, m in enumerate(sorted(harmful, key=lambda m: (means[m], tops[m], m)), start=1):
        ranks[m] = rank
    return ranks


def _rankings(
    name: str, models: tuple[str, ...], prompts: _PromptInfo, ranks: dict[int, list[int]]
) -> AnnotatorRankings:
    rows = {prompts[p][0]: ranks[p] for p in prompts if p in ranks}
    categories = {prompts[p][0]: prompts[p][1] for p in prompts if p in ranks}
    has_categories = any(c is not None for c in categories.values())
    return AnnotatorRankings.build(name, models, rows, categories if has_categories else None)


async def _human_rankings(
    session: AsyncSession, run_id: int, models: list[planner.RunModel], prompts: _PromptInfo
) -> tuple[list[AnnotatorRankings], dict[str, Any]]:
    """Humans ranked the imported responses: they join only a run that judged exactly those.

    The annotators of kind human (not the expert, not a stored aggregate) make the run's human
    reference, ``REFERENCE_NAME``: the judges are compared with it, not with each of them.
    """
    dataset_id = await session.scalar(select(Run.dataset_id).where(Run.id == run_id))
    assert dataset_id is not None
    names = tuple(m.name for m in models)
    if not all(m.imported for m in models) or names != await dataset_models(session, dataset_id):
        reason = "humans ranked the imported responses of the dataset's models; this run did not"
        return [], {"included": [], "excluded_because": reason, "reference": None}
    found = await session.execute(
        select(Annotator.name, Annotator.kind, Ranking.prompt_id, Ranking.ranks)
        .join(Ranking.annotator)
        .where(
            Annotator.kind.in_(_HUMAN_KINDS),
            Ranking.presentation_key == "",
            Ranking.prompt_id.in_(list(prompts)),
        )
        .order_by(Annotator.id, Ranking.id)
    )
    by_annotator: defaultdict[str, dict[int, list[int]]] = defaultdict(dict)
    aggregated: dict[str, None] = {}
    for name, kind, prompt_id, ranks in found:
        by_annotator[name][prompt_id] = ranks
        if AnnotatorKind(kind) == AnnotatorKind.HUMAN:
            aggregated[name] = None
    humans = [_rankings(n, names, prompts, r) for n, r in by_annotator.items()]
    return humans, {
        "included": [h.annotator for h in humans],
        "excluded_because": None,
        "reference": REFERENCE_NAME if aggregated else None,
        "reference_aggregates": list(aggregated),
    }


def _pairs(
    judges: list[AnnotatorRankings],
    annotators: list[AnnotatorRankings],
    reference: ReferenceSpec | None,
) -> list[tuple[str, str]]:
    """Each judge against the human reference first, then against every other annotator it
    shares a prompt with, except the humans the reference stands for (humans among themselves
    are not this run's question)."""
    judge_names = [j.annotator for j in judges if j.prompts]
    if reference is None:
        return reference_pairs(annotators, None, (), compared=judge_names)
    made = human_reference(annotators, reference).rankings
    return reference_pairs(annotators, made, reference.humans, compared=judge_names)
