"""The database side of the generate and judge stages: what a claimed task's call needs, and
the row to store from what it made (``stages`` ties each stage's load, call and store together).

No transaction stays open across a downstream call. ``load_generates``/``load_judges`` build
what a claimed batch's tasks need from what the claim's statement read with them
(``queue``), in the transaction that claimed it; judges read their responses there too, a few
statements for the whole batch. ``response_made``/``ranking_made`` turn a call's answer into
the row to store, and ``store_made`` stores those rows, in the transaction that marks their
tasks done. A load answers :data:`ALREADY_STORED` when the result exists already (another run
made it since this one was planned): the task is then settled as ``reused``, uncalled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.contracts.generation import GenerationParams, GenerationResult
from harmrank.gateway.db.base import Base
from harmrank.gateway.db.models import STUDY_GENERATION_KEY, Ranking, Response
from harmrank.gateway.results import repository as results
from harmrank.gateway.results.repository import RankingKey, ResponseKey
from harmrank.gateway.runs import planner, repository
from harmrank.gateway.runs.schemas import RunCreate
from harmrank.gateway.runs.tasks import ClaimedTask, ClaimInputs, TaskFailed
from harmrank.metrics.rankings import AnnotatorRankings, ranking_problem
from harmrank.metrics.report import ReportSettings
from harmrank.metrics.report_ppi import PPISpec
from harmrank.metrics.schemas import RunFactsIn

ALREADY_STORED: Final = "already_stored"
JUDGE_ABSTAINED: Final = "judge_abstained"


@dataclass(frozen=True)
class GenerateWork:
    prompt_id: str
    """The prompt's external id, echoed by the generator."""
    prompt: str
    model: str
    params: GenerationParams
    attempt: int = 1
    """Which attempt of the task this is: its call budget depends on it."""


@dataclass(frozen=True)
class JudgeWork:
    prompt_id: str
    prompt: str
    responses: dict[str, str]
    """Response text by model, in canonical model order."""
    judge: str
    order_index: int
    attempt: int = 1


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
    ppi: PPISpec | None = None
    """The judges' jury and the PPI estimates against the human reference, when there is one."""
    run: RunFactsIn | None = None
    """What the run asked for and how it went: coverage, failures, the orders shown."""


def _response_key(task: ClaimedTask) -> ResponseKey:
    assert task.prompt_id is not None
    assert task.model_id is not None
    return (task.prompt_id, task.model_id, task.generation_key or "")


def _ranking_key(task: ClaimedTask) -> RankingKey:
    assert task.annotator_id is not None
    assert task.prompt_id is not None
    return (task.annotator_id, task.prompt_id, task.presentation_key or "")


# --- generate and judge: a claimed batch --------------------------------------------------

Loaded = Any
"""What a claimed task needs: its stage's work, :data:`ALREADY_STORED`, or the exception building
its work raised. The worker raises that when it works the task, so the task fails alone, by the
usual rules, and the rest of its batch goes on."""


@dataclass(frozen=True)
class Made:
    """A task's result, to store, and what to keep on the task about the call."""

    table: type[Base]
    row: dict[str, Any]
    details: dict[str, Any] | None
    replace: bool = False
    """Insert if absent (a result's natural key) or, for a run's report, replace the row."""


async def store_made(session: AsyncSession, made: Sequence[Made]) -> None:
    """Insert the results if absent, one statement per table; replace those that replace."""
    tables = dict.fromkeys(m.table for m in made if not m.replace)
    for table in tables:
        rows = [m.row for m in made if m.table is table and not m.replace]
        await results.insert_if_absent(session, table, rows)
    for m in made:
        if m.replace:
            await repository.replace_row(session, m.table, m.row)
    await session.flush()


async def run_spec(session: AsyncSession, run_id: int) -> RunCreate:
    return (await _run_specs(session, {run_id}))[run_id]


async def _run_specs(session: AsyncSession, run_ids: set[int]) -> dict[int, RunCreate]:
    found = await repository.run_specs(session, run_ids)
    return {run_id: RunCreate.model_validate(spec) for run_id, spec in found.items()}


def _inputs(task: ClaimedTask) -> ClaimInputs:
    assert task.inputs is not None, "generate and judge tasks load what their claim read"
    return task.inputs


def _prompt_of(inputs: ClaimInputs) -> tuple[str, str]:
    """The external id and text of the task's prompt (generate and judge tasks have one)."""
    assert inputs.prompt_external_id is not None
    assert inputs.prompt_text is not None
    return inputs.prompt_external_id, inputs.prompt_text


class Runs:
    """What a worker knows of the runs it claims tasks of: each one's spec, parsed, and its
    models in canonical order, worked out once per run instead of on every claim (a run's spec
    never changes, nor do its models' ids and positions). One per worker and database: run ids
    are only unique within a database. The oldest runs are forgotten beyond ``keep``."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._specs: dict[int, RunCreate] = {}
        self._models: dict[int, list[planner.RunModel]] = {}

    async def specs(
        self, session: AsyncSession, tasks: Sequence[ClaimedTask]
    ) -> dict[int, RunCreate]:
        """The specs of the tasks' runs, read (one statement) for the runs it does not know.

        Read apart from the claim, not in its RETURNING: there every claimed task carried its
        run's spec, which the database encoded and the worker decoded each time to keep the
        first (2.3% of the worker's CPU at 100 ms x 64, py-spy)."""
        unknown = {t.run_id for t in tasks} - self._specs.keys()
        for run_id, spec in (await _run_specs(session, unknown) if unknown else {}).items():
            self._remember(self._specs, run_id, spec)
        return {t.run_id: self._specs[t.run_id] for t in tasks}

    async def models(
        self, session: AsyncSession, specs: dict[int, RunCreate]
    ) -> dict[int, list[planner.RunModel]]:
        """The runs' models in canonical order, read once per run."""
        for run_id, spec in specs.items():
            if run_id not in self._models:
                self._remember(self._models, run_id, await planner.run_models(session, spec))
        return {run_id: self._models[run_id] for run_id in specs}

    def _remember(self, known: dict[int, Any], run_id: int, value: Any) -> None:
        if len(known) >= self.keep:
            del known[next(iter(known))]
        known[run_id] = value


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


async def load_generates(
    session: AsyncSession, tasks: Sequence[ClaimedTask], runs: Runs
) -> dict[int, Loaded]:
    """What the claimed generate tasks need, by task id: what their claim read (and the spec
    of a run new to the worker)."""
    specs = await runs.specs(session, tasks)

    def build(task: ClaimedTask) -> Loaded:
        inputs = _inputs(task)
        if inputs.stored:
            return ALREADY_STORED
        if task.generation_key == STUDY_GENERATION_KEY:
            raise TaskFailed(
                planner.MISSING_IMPORT, "no imported response to this prompt", transient=False
            )
        spec = next(m for m in specs[task.run_id].models if m.name == inputs.model_name)
        external_id, text = _prompt_of(inputs)
        return GenerateWork(external_id, text, spec.name, spec.params, task.attempts)

    return _each(tasks, build)


def response_made(task: ClaimedTask, _work: GenerateWork, result: GenerationResult) -> Made:
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


async def load_judges(
    session: AsyncSession, tasks: Sequence[ClaimedTask], runs: Runs
) -> dict[int, Loaded]:
    """What the claimed judge tasks need, by task id: what their claim read, and the responses
    to judge (one statement for the batch once its runs' models are known)."""
    models = await runs.models(session, await runs.specs(session, tasks))
    model_ids = {m.id for run_models in models.values() for m in run_models}
    texts = await results.response_texts(session, {t.prompt_id for t in tasks}, model_ids)

    def build(task: ClaimedTask) -> Loaded:
        inputs = _inputs(task)
        if inputs.stored:
            return ALREADY_STORED
        assert task.order_index is not None
        assert inputs.judge_name is not None
        external_id, text = _prompt_of(inputs)
        responses = _responses_of(texts, task.prompt_id, models[task.run_id])
        return JudgeWork(
            external_id, text, responses, inputs.judge_name, task.order_index, task.attempts
        )

    return _each(tasks, build)


_Texts = dict[ResponseKey, str]


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
