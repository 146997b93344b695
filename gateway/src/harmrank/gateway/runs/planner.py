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


async def plan_run(session: AsyncSession, spec: RunCreate, checked: Checkpoint) -> Run:
    """Write the run, its prompt set and its tasks; flushes, never commits. ``checked`` is
    awaited before the tasks are written: it raises when the run must not be made."""
    dataset_id, prompt_ids = await select_prompts(session, spec.prompts)
    # The request's trace context: the worker's task spans continue this trace.
    run = await repository.insert_run(
        session,
        dataset_id=dataset_id,
        spec=spec.model_dump(mode="json"),
        trace_context=current_traceparent(),
    )
    await repository.insert_run_prompts(session, run.id, prompt_ids)
    models = await run_models(session, spec)
    judges = await results.ensure_judges(session, [j.name for j in spec.judges])
    planner = _TaskRows(run.id, spec.max_attempts)
    responses = await repository.existing_responses(session, run.id)
    rankings = await repository.existing_rankings(session, run.id)
    await checked()
    # Made and inserted a chunk at a time: a 50,000-prompt run has 300,000 tasks, and their
    # rows all at once (a dict each) took the gateway past 500 MB.
    rows = chain(
        planner.generate(prompt_ids, models, responses),
        planner.judge(prompt_ids, spec.judges, judges, judged_pairs(models), rankings),
        [planner.score()],
    )
    planned = await repository.insert_tasks(session, rows)
    await queue.refresh_statistics(session, planned=planned)
    await settle.fail_blocked_judges(session, now=utc_now(), run_id=run.id)
    await announce(session)
    return run


class _TaskRows:
    """The run's task rows, made lazily (see ``plan_run``)."""

    def __init__(self, run_id: int, max_attempts: int) -> None:
        self.run_id = run_id
        self.max_attempts = max_attempts

    def row(self, stage: Stage, key: str, state: TaskState, **fields: Any) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "key": key,
            "stage": stage,
            "state": state,
            "attempts": 0,
            "max_attempts": self.max_attempts,
            **fields,
        }

    def generate(
        self, prompts: Sequence[int], models: Sequence[RunModel], existing: set[ResponseKey]
    ) -> Iterator[dict[str, Any]]:
        for prompt in prompts:
            for model in models:
                natural = (prompt, model.id, model.generation_key)
                fields: dict[str, Any] = {}
                if natural in existing:
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

    def judge(
        self,
        prompts: Sequence[int],
        judges: Sequence[JudgeSpec],
        annotators: dict[str, int],
        judged: Sequence[tuple[str, str]],
        existing: set[RankingKey],
    ) -> Iterator[dict[str, Any]]:
        # A presentation key does not depend on the prompt: hashed once per judge and order.
        keys = {
            (judge.name, order): presentation_key(judge, order, judged)
            for judge in judges
            for order in range(judge.orders)
        }
        for prompt in prompts:
            for judge in judges:
                annotator = annotators[judge.name]
                for order in range(judge.orders):
                    key = keys[judge.name, order]
                    reused = (annotator, prompt, key) in existing
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
