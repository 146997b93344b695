"""Plan a run: pick its prompts and write one task row per result it needs.

Tasks: generate per prompt × model; judge per prompt × judge × presentation order; one score.
A task whose result already exists (from an earlier run or an import) is written in state
``reused``, so a new run never pays twice for a response or a ranking.

Result keys are stable hashes, so equal settings give equal keys in every run:

- ``generation_key`` = sha256 of the model name and the generation parameters that were set;
  ``study`` for responses imported with the dataset.
- ``presentation_key`` = sha256 of the judge name, its settings, the order index *and the
  responses judged* (each model with its generation key). The responses are part of it because
  a ranking of other responses to the same prompt is another result: without them, a run with
  new generation settings would reuse rankings of the old responses.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import InvalidInput, NotFound
from harmrank.common.tracing import current_traceparent
from harmrank.gateway.datasets import repository as datasets_repo
from harmrank.gateway.db.base import utc_now
from harmrank.gateway.db.models import STUDY_GENERATION_KEY
from harmrank.gateway.db.run_models import Run, Stage, TaskState
from harmrank.gateway.results import repository as results
from harmrank.gateway.results.repository import RankingKey, ResponseKey
from harmrank.gateway.runs import queue, repository, settle
from harmrank.gateway.runs.announce import announce
from harmrank.gateway.runs.checks import Checkpoint
from harmrank.gateway.runs.schemas import JudgeSpec, ModelSpec, PromptSet, RunCreate

MISSING_IMPORT = "missing_imported_response"


def stable_hash(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def generation_key(model: ModelSpec) -> str:
    if model.source == "imported":
        return STUDY_GENERATION_KEY
    params = model.params.model_dump(mode="json", exclude_none=True)
    return stable_hash({"model": model.name, "params": params})


def presentation_key(judge: JudgeSpec, order_index: int, judged: Sequence[tuple[str, str]]) -> str:
    """``judged``: (model, generation key) of each response shown, in canonical model order."""
    return stable_hash(
        {
            "judge": judge.name,
            "settings": judge.settings,
            "order": order_index,
            "responses": [list(pair) for pair in judged],
        }
    )


@dataclass(frozen=True)
class RunModel:
    name: str
    id: int
    generation_key: str
    imported: bool


async def run_models(session: AsyncSession, spec: RunCreate) -> list[RunModel]:
    """The run's models in canonical (position) order: the order of every rank list."""
    ids = await results.ensure_models(session, [m.name for m in spec.models])
    positions = await results.model_positions(session, list(ids.values()))
    models = [
        RunModel(m.name, ids[m.name], generation_key(m), m.source == "imported")
        for m in spec.models
    ]
    return sorted(models, key=lambda m: positions[m.id])


def judged_pairs(models: Sequence[RunModel]) -> list[tuple[str, str]]:
    return [(m.name, m.generation_key) for m in models]


async def select_prompts(session: AsyncSession, prompts: PromptSet) -> tuple[int, list[int]]:
    """The dataset's id and the prompt ids in dataset order; a seeded sample is the same for
    the same seed and data."""
    try:
        dataset_id = await datasets_repo.dataset_id_by_name(session, prompts.dataset)
    except NotFound as exc:  # the run's body names it: the request is what is wrong
        raise InvalidInput(exc.message) from None
    ids = await results.prompt_ids(session, dataset_id, prompts.categories)
    if not ids:
        raise InvalidInput(f"dataset {prompts.dataset!r} has no prompts in the chosen categories")
    if prompts.sample_size is None:
        return dataset_id, ids
    if prompts.sample_size > len(ids):
        raise InvalidInput(f"sample_size {prompts.sample_size} exceeds the {len(ids)} prompts")
    return dataset_id, sorted(random.Random(prompts.seed).sample(ids, prompts.sample_size))


HEAD_PROMPTS = 64
"""The fewest prompts whose tasks a run's head holds (see ``plan_run``): at 100 ms a call, a
worker with 64 slots takes about 0.4 s to work through 64 prompts' tasks (3 models, a judge),
longer than a 1,000-prompt run's rest takes to be written."""
HEAD_SHARE = 16
"""...and at least this fraction of a run's prompts: a 50,000-prompt run's rest takes 6 s to be
written, and its head of 3,125 prompts keeps 64 slots busy for 20 s."""


def head_prompts(prompts: int, dialect: str) -> int:
    """How many of a run's first prompts have their tasks written with the run. SQLite has one
    writer, so a worker could claim nothing while the rest is written: all of them there."""
    if dialect != "postgresql":
        return prompts
    return min(prompts, max(HEAD_PROMPTS, prompts // HEAD_SHARE))


async def plan_run(session: AsyncSession, spec: RunCreate, checked: Checkpoint) -> Run:
    """Write the run, its prompt set and the tasks of its head; flushes, never commits.
    ``checked`` is awaited before any task is written: it raises when the run must not be made.

    A run's head is the tasks of its first prompts (``head_prompts``), its rest those of the
    others and its score task. On PostgreSQL the caller commits the head, so that workers
    start on it, and then writes the rest with ``plan_rest`` in a transaction of its own:
    writing a 1,000-prompt run's 4,001 tasks took 0.2 s, 3% of its calls' time at 64 in
    flight, during which no call could start (``bench/platform_overhead.py``). Until the rest
    is committed, ``planned_at`` is empty: the run is not whole. Where the head is every prompt
    (SQLite, small runs) the run is planned here, whole."""
    dataset_id, prompt_ids = await select_prompts(session, spec.prompts)
    # The request's trace context: the worker's task spans continue this trace.
    run = await repository.insert_run(
        session,
        dataset_id=dataset_id,
        spec=spec.model_dump(mode="json"),
        trace_context=current_traceparent(),
    )
    await repository.insert_run_prompts(session, run.id, prompt_ids)
    tasks = await _TaskRows.read(session, run.id, spec)
    await checked()
    head = head_prompts(len(prompt_ids), session.get_bind().dialect.name)
    await tasks.insert(session, prompt_ids[:head], whole=head == len(prompt_ids))
    return run


async def plan_rest(session: AsyncSession, run_id: int) -> bool:
    """Write the tasks of the run's prompts that have none yet, and its score task, unless the
    run is planned already; flushes, never commits. Answers whether it planned the run.

    The run's row stays locked until the caller commits: a cancel or a resume waits for the
    rest, and two callers (the request that made the run, a worker finishing a plan its
    gateway left half done) never both write it."""
    run = await repository.run_to_plan(session, run_id)
    if run is None or run.planned_at is not None:
        return False
    spec = RunCreate.model_validate(run.spec)
    tasks = await _TaskRows.read(session, run_id, spec, cancelled=run.cancelled_at is not None)
    await tasks.insert(session, await repository.prompts_without_tasks(session, run_id), whole=True)
    return True


PLANNING_GRACE = timedelta(minutes=1)
"""How long after its creation a run whose rest is not written (nor being written: its row is
not locked) is taken for one its gateway left half planned. Only the moment between the commit
of its head and the lock its rest is written under needs it: a rest being written holds that
lock however long it takes."""


async def finish_half_planned(
    session: AsyncSession, *, now: datetime
) -> dict[int, Exception | None]:
    """Write the rest of every run its gateway left half planned (stopped between the head's
    commit and the rest's); flushes, never commits. Answers each such run's id with what
    stopped its rest from being written (None: written). Workers call it now and then, in the
    transaction that reaps expired leases and claims: each run's rest is written in a
    savepoint, so that a run that cannot be planned (its stored spec no longer valid, say)
    stops neither the others nor the claim."""
    outcome: dict[int, Exception | None] = {}
    for run_id in await repository.half_planned(session, before=now - PLANNING_GRACE):
        try:
            async with session.begin_nested():
                await plan_rest(session, run_id)
        except Exception as exc:  # told to the caller, which logs it; the next reap tries again
            outcome[run_id] = exc
        else:
            outcome[run_id] = None
    return outcome


def planning_stalled(created_at: datetime, now: datetime) -> str | None:
    """Why a run whose tasks are not all written yet looks stalled, or None while it is young."""
    if now - created_at < PLANNING_GRACE:
        return None
    waited = int((now - created_at).total_seconds())
    return (
        f"its tasks are not all written {waited} s after it was created: if the gateway that "
        "made it stopped, a worker writes the rest (or resume the run)"
    )


class _TaskRows:
    """The run's task rows, made lazily (see ``insert``)."""

    def __init__(
        self,
        run_id: int,
        spec: RunCreate,
        models: list[RunModel],
        judges: dict[str, int],
        responses: set[ResponseKey],
        rankings: set[RankingKey],
        cancelled: bool,
    ) -> None:
        self.run_id = run_id
        self.spec = spec
        self.models = models
        self.judges = judges
        self.responses = responses
        self.rankings = rankings
        self.cancelled = cancelled

    @classmethod
    async def read(
        cls, session: AsyncSession, run_id: int, spec: RunCreate, *, cancelled: bool = False
    ) -> _TaskRows:
        """What the rows depend on: the run's models and judges and the results that exist."""
        models = await run_models(session, spec)
        judges = await results.ensure_judges(session, [j.name for j in spec.judges])
        responses = await repository.existing_responses(session, run_id)
        rankings = await repository.existing_rankings(session, run_id)
        return cls(run_id, spec, models, judges, responses, rankings, cancelled)

    async def insert(self, session: AsyncSession, prompts: Sequence[int], *, whole: bool) -> None:
        """Insert the tasks of ``prompts``; ``whole``: with the score task, and the run is
        planned (statistics, judges that can never run, ``planned_at``). Announced either way."""
        # Made and inserted a chunk at a time: a 50,000-prompt run has 300,000 tasks, and their
        # rows all at once (a dict each) took the gateway past 500 MB.
        rows = chain(
            self.generate(prompts),
            self.judge(prompts),
            [self.score()] if whole else [],
        )
        planned = await repository.insert_tasks(session, rows)
        now = utc_now()
        if whole:
            await queue.refresh_statistics(session, planned=planned)
            await repository.mark_planned(session, self.run_id, now=now)
        await settle.fail_blocked_judges(session, now=now, run_id=self.run_id)
        await announce(session)

    def row(self, stage: Stage, key: str, state: TaskState, **fields: Any) -> dict[str, Any]:
        if state == TaskState.QUEUED and self.cancelled:
            # Cancelled after its head was committed: what a cancel does to queued tasks.
            state, fields = TaskState.CANCELLED, fields | {"finished_at": utc_now()}
        return {
            "run_id": self.run_id,
            "key": key,
            "stage": stage,
            "state": state,
            "attempts": 0,
            "max_attempts": self.spec.max_attempts,
            **fields,
        }

    def generate(self, prompts: Sequence[int]) -> Iterator[dict[str, Any]]:
        for prompt in prompts:
            for model in self.models:
                natural = (prompt, model.id, model.generation_key)
                fields: dict[str, Any] = {}
                if natural in self.responses:
                    state = TaskState.REUSED
                elif model.imported:
                    # Nothing to generate: an imported response is there or it is not.
                    state = TaskState.FAILED
                    fields = {
                        "error_type": MISSING_IMPORT,
                        "error_message": f"no imported response of {model.name} to this prompt",
                    }
                else:
                    state = TaskState.QUEUED
                yield self.row(
                    Stage.GENERATE,
                    f"generate:{prompt}:{model.id}:{model.generation_key}",
                    state,
                    prompt_id=prompt,
                    model_id=model.id,
                    generation_key=model.generation_key,
                    **fields,
                )

    def judge(self, prompts: Sequence[int]) -> Iterator[dict[str, Any]]:
        judges = self.spec.judges
        judged = judged_pairs(self.models)
        # A presentation key does not depend on the prompt: hashed once per judge and order.
        keys = {
            (judge.name, order): presentation_key(judge, order, judged)
            for judge in judges
            for order in range(judge.orders)
        }
        for prompt in prompts:
            for judge in judges:
                annotator = self.judges[judge.name]
                for order in range(judge.orders):
                    key = keys[judge.name, order]
                    reused = (annotator, prompt, key) in self.rankings
                    yield self.row(
                        Stage.JUDGE,
                        f"judge:{prompt}:{annotator}:{key}",
                        TaskState.REUSED if reused else TaskState.QUEUED,
                        prompt_id=prompt,
                        annotator_id=annotator,
                        presentation_key=key,
                        order_index=order,
                    )

    def score(self) -> dict[str, Any]:
        return self.row(Stage.SCORE, "score", TaskState.QUEUED)
